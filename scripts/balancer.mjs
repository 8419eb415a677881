#!/usr/bin/env node
// A small TCP load balancer for trying and testing several sotto-server nodes on one
// machine (in production, use nginx or HAProxy: see server/deploy/). Each new connection
// goes to the preferred backend — or, round-robin, to each in turn — and to the next one
// that takes it when that one is down. No stickiness: any node serves any request.
//
//   node scripts/balancer.mjs 127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Listens on `listen` ({host, port}; port 0 picks one) and forwards to `backends`
 * ([{host, port}]). Returns {base, prefer, roundRobin, open, close}: set `prefer` to pick
 * the backend new connections try first; `open[i]` holds the live connections to backend i.
 */
export async function balancer(backends, { listen = { host: '127.0.0.1', port: 0 }, roundRobin = false } = {}) {
  const lb = { prefer: 0, roundRobin, open: backends.map(() => new Set()) };
  const server = net.createServer((client) => {
    client.pause();
    const first = lb.prefer;
    if (lb.roundRobin) lb.prefer = (lb.prefer + 1) % backends.length;
    const attempt = (tries) => {
      if (tries === backends.length) return client.destroy();
      const i = (first + tries) % backends.length;
      const upstream = net.connect({ host: backends[i].host || '127.0.0.1', port: Number(backends[i].port) });
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        lb.open[i].add(upstream);
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (!connected) attempt(tries + 1);
      });
      upstream.on('close', () => {
        lb.open[i].delete(upstream);
        if (connected) client.destroy();
      });
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise((resolve) => server.listen(listen.port, listen.host, resolve));
  lb.base = `http://${listen.host}:${server.address().port}`;
  lb.close = () => new Promise((resolve) => server.close(resolve));
  return lb;
}

function hostPort(text) {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i) || '127.0.0.1', port: Number(text.slice(i + 1)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, ...backends] = process.argv.slice(2);
  if (!listen || backends.length === 0) {
    console.error('usage: node scripts/balancer.mjs LISTEN_HOST:PORT BACKEND_HOST:PORT…');
    process.exit(2);
  }
  const lb = await balancer(backends.map(hostPort), { listen: hostPort(listen), roundRobin: true });
  console.log(`balancer on ${lb.base}, round-robin over ${backends.join(', ')}`);
}
