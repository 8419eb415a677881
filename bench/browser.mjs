// The browser benchmarks, in headless Chromium against a real sotto-server on loopback:
// cryptography in wasm beside WebCrypto (bench/pages/crypto.html), loading time for a
// returning user and a first visit (load.html), and message latency from one page to
// another, for two members and for a thread of 50 (chat.html). Prints and writes JSON.
//
// node bench/browser.mjs --server target/server/sotto-server --load target/load/sotto-load
//   [--runs 20] [--messages 1000] [--json FILE]
import { createServer } from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs';
import { join, dirname, extname, normalize } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const serverBin = args.server || join(root, 'target/server/sotto-server');
const loadBin = args.load || join(root, 'bench/target/load/sotto-load');
const runs = Number(args.runs || 20);
const messages = Number(args.messages || 1000);
const SECRET = 'sotto-load-generator-secret-for-the-bench-org-only';

function jwt(user) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT', kid: 'bench' });
  const body = b64({ user: { id: user, name: user }, iat: now, exp: now + 7200 });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'sotto-bench-'));
  const config = join(dir, 'bench.toml');
  writeFileSync(config, `listen = "127.0.0.1:0"
database = "${join(dir, 'sotto.db')}"
allowed_origins = ["*"]
auth_rate_per_minute = 100000000
session_rate_per_minute = 100000000
[[orgs]]
id = "bench"
[[orgs.keys]]
kid = "bench"
alg = "HS256"
secret = "${SECRET}"
`);
  const child = spawn(serverBin, ['--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SOTTO_LOG: 'warn' } });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`sotto-server exited with ${code}`)));
  });
  return { base, stop: () => child.kill('SIGTERM') };
}

// The pages, the built package and the benchmark wasm, from a second origin like a real site.
function startSite() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.mjs': 'text/javascript' };
  const mounts = [
    ['/pkg/', join(root, 'pkg')],
    ['/bench-wasm/', join(root, 'bench/target/bench-wasm')],
    ['/', join(root, 'bench/pages')],
  ];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, dir] = mounts.find(([p]) => path.startsWith(p));
    const file = normalize(join(dir, path.slice(prefix.length)));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] || 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ base: `http://127.0.0.1:${server.address().port}`, close: () => server.close() })));
}

const stats = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.round((s.length - 1) * p))];
  return { n: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const server = await startServer();
const site = await startSite();
const results = { chromium: browser.version() };
try {
  // 1. Cryptography in the page.
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${site.base}/crypto.html`);
  await page.waitForFunction(() => window.ready);
  results.crypto_us = await page.evaluate(() => window.run());
  console.log('crypto (µs per operation, 1 KiB):', results.crypto_us);

  // 2. Loading: a returning user (keys in IndexedDB), then first visits (keys made).
  const loadOnce = async (p, user) => {
    if (!p.logging) {
      p.logging = [];
      p.on('console', (m) => p.logging.push(m.text()));
      p.on('pageerror', (e) => p.logging.push(e.message));
    }
    await p.goto(`${site.base}/load.html?server=${encodeURIComponent(server.base)}&jwt=${jwt(user)}`);
    await p.waitForFunction(() => window.loadedMs !== undefined, null, { timeout: 30000 }).catch((e) => {
      throw new Error(`${user} never loaded: ${p.logging.join('\n')}`, { cause: e });
    });
    return p.evaluate(() => window.loadedMs);
  };
  const returning = await (await browser.newContext()).newPage();
  await loadOnce(returning, 'returning');
  const returningMs = [];
  for (let i = 0; i < runs; i++) returningMs.push(await loadOnce(returning, 'returning'));
  const firstMs = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    firstMs.push(await loadOnce(await context.newPage(), `first${i}`));
    await context.close();
  }
  results.load_ms = { returning: stats(returningMs), first_visit: stats(firstMs) };
  console.log('loading (ms):', results.load_ms);

  // 3. Latency: two members, then a thread of 50 (48 more members with real keys).
  execFileSync(loadBin, ['--provision', '48', '--base', server.base], { stdio: 'inherit' });
  const context = await browser.newContext();
  const open = async (user) => {
    const p = await context.newPage();
    await p.goto(`${site.base}/chat.html?server=${encodeURIComponent(server.base)}&jwt=${jwt(user)}`);
    await p.waitForFunction(() => window.loaded, null, { timeout: 30000 });
    return p;
  };
  const sender = await open('lata');
  const receiver = await open('latb');
  const measure = async (expr, label) => {
    const threadId = await sender.evaluate((e) => window.client.threadEnsure(e), expr);
    await sender.evaluate((id) => window.sendAll(id, 5, 1024), threadId); // sessions, keys
    await receiver.evaluate(() => { window.latencies = []; });
    await sender.evaluate(() => { window.sendMs = []; });
    await sender.evaluate(({ id, n }) => window.sendAll(id, n, 1024), { id: threadId, n: messages });
    const s = stats(await receiver.evaluate(() => window.latencies));
    s.send = stats(await sender.evaluate(() => window.sendMs));
    console.log(`latency, ${label} (ms):`, s);
    return s;
  };
  results.latency_ms = { two: await measure('@latb', 'two members') };
  const members = ['@latb', ...Array.from({ length: 48 }, (_, i) => `@member${i}`)].join(' + ');
  results.latency_ms.fifty = await measure(members, '50 members');
} finally {
  await browser.close();
  server.stop();
  site.close();
}
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2));
