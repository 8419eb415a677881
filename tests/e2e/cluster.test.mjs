// Two sotto-server processes on one PostgreSQL database with NATS between them, behind a
// small TCP load balancer in this test; two Chromium pages talk through the balancer.
// Alice's connections go to node A and Bob's to node B, so every message crosses nodes.
// Then node A is killed (-9) in the middle of a stream: Alice's client reconnects through
// the balancer to B and every message arrives exactly once. (A send that the kill cut off
// stays pending and goes again when Alice reconnects, so it can arrive after messages she
// typed later, which went over HTTP meanwhile: Bob's thread is in arrival order.) Node A restarted on the
// same database and bus picks up where it was: B is stopped (SIGTERM, draining), both
// clients move to A, and the conversation goes on.
//
// It needs PostgreSQL (SOTTO_TEST_POSTGRES, default the local one as user postgres, and
// psql) and NATS (SOTTO_TEST_NATS); without them it is skipped with a notice, unless
// SOTTO_REQUIRE_SERVICES=1, as CI sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { join } from 'node:path';
import { startServer, launchBrowser, newPage, openDemoAs, until, artifacts } from './harness.mjs';
import { balancer } from '../../scripts/balancer.mjs';

const pgAdmin = process.env.SOTTO_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/postgres';
const nats = process.env.SOTTO_TEST_NATS || 'nats://127.0.0.1:4222';

function answers(url, fallbackPort) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || fallbackPort) });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const missing = [];
if (!(await answers(pgAdmin, 5432))) missing.push(`PostgreSQL (${pgAdmin})`);
if (!(await answers(nats, 4222))) missing.push(`NATS (${nats})`);
if (missing.length && process.env.SOTTO_REQUIRE_SERVICES === '1') {
  throw new Error(`the cluster test needs ${missing.join(' and ')}, and SOTTO_REQUIRE_SERVICES=1 requires it`);
}
const skip = missing.length ? `needs ${missing.join(' and ')}: see scripts/service-tests.sh` : false;

test('two nodes behind a balancer: messages cross nodes, survive kill -9 and a restart', { skip, timeout: 180000 }, async (t) => {
  const name = 'sotto_e2e_' + randomBytes(8).toString('hex');
  execFileSync('psql', [pgAdmin, '-qc', `CREATE DATABASE ${name}`]);
  const database = pgAdmin.replace(/\/[^/]*$/, '/' + name);
  const shared = { args: ['--bus', nats], env: { SOTTO_DEMO_SECRET: randomBytes(24).toString('hex') } };
  let a = await startServer({ database, ...shared });
  const b = await startServer({ database, ...shared });
  const lb = await balancer([a, b]);
  const browser = await launchBrowser();
  const alice = await newPage(browser);
  const bob = await newPage(browser);
  t.after(async () => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
    await browser.close();
    await a.stop();
    await b.stop();
    await lb.close();
    execFileSync('psql', [pgAdmin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
  });

  // Bob on node B, Alice on node A.
  lb.prefer = 1;
  await openDemoAs(bob, lb.base, 'bob');
  lb.prefer = 0;
  await openDemoAs(alice, lb.base, 'alice');
  assert.ok(lb.open[0].size > 0 && lb.open[1].size > 0, 'both nodes hold connections');
  const threadId = await alice.evaluate(() => window.client.threadMake('@bob'));
  await alice.evaluate((id) => window.client.threadOpen(id), threadId);

  const sent = [];
  const say = async (i) => {
    const text = `message ${i} ` + randomBytes(4).toString('hex');
    sent.push(text);
    // A send cut off by the kill is kept as pending and goes again on reconnection.
    await alice.evaluate(([id, text]) => window.client.threadSendMessage(id, text).catch((e) => e.code), [threadId, text]);
  };
  for (let i = 0; i < 10; i++) await say(i);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bob.locator('.msg.in .text', { hasText: sent[9] }).waitFor({ timeout: 15000 });

  // kill -9 node A in the middle of a stream; Alice's client finds node B.
  const stream = (async () => { for (let i = 10; i < 30; i++) { await say(i); await new Promise((r) => setTimeout(r, 50)); } })();
  await new Promise((r) => setTimeout(r, 300));
  const cut = lb.open[0].size;
  await a.kill();
  await stream;
  assert.ok(cut > 0, 'node A held connections when it was killed');
  const inBob = async () => bob.evaluate(async (id) => (await window.client.threadMessages(id)).map((m) => m.text), threadId);
  await until(bob, async (id) => (await window.client.threadMessages(id)).length >= 30, threadId, { timeout: 60000, what: 'all 30 messages at Bob' });
  const once = (texts) => [...texts].sort();
  assert.deepEqual(once(await inBob()), once(sent), 'each message exactly once');

  // Node A comes back on the same database and bus; B stops gracefully: both clients move
  // to A and carry on, both ways.
  a = await startServer({ database, listen: `127.0.0.1:${a.port}`, ...shared });
  lb.prefer = 0;
  await b.stop();
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 30000 });
  await bob.locator('.status[data-connected="true"]').waitFor({ timeout: 30000 });
  await say(30);
  const reply = 'Back on node A ' + randomBytes(4).toString('hex');
  await bob.evaluate(([id, text]) => window.client.threadSendMessage(id, text), [threadId, reply]);
  await alice.locator('.msg.in .text', { hasText: reply }).waitFor({ timeout: 15000 });
  await until(bob, async (id) => (await window.client.threadMessages(id)).length >= 32, threadId, { timeout: 30000, what: 'the last message at Bob' });
  assert.deepEqual(once((await inBob()).filter((text) => text !== reply)), once(sent), 'still each exactly once');
  await bob.screenshot({ path: join(artifacts, 'cluster-bob.png') });
});
