// Retry receipts in real Chromium pages, between two people and in a group: an envelope that Bob's browser cannot open (the
// relay flipped a bit in it) is answered with a retry request, not an ack; Alice's browser
// sends the message again on a fresh session; Bob reads it once, and Alice sees it
// delivered only then — also when the request comes after Alice reloaded. And what no
// device took before the server's maximum age shows to its sender as not delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, until, startServer, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

/** The status of the message with `text` in `page`'s threads, or null. */
function statusOf(page, text) {
  return page.evaluate(async (text) => {
    for (const t of await window.client.threadList()) {
      const m = (await window.client.threadMessages(t.id)).find((m) => m.text === text);
      if (m) return m.status;
    }
    return null;
  }, text);
}

/** Waits until the message with `text` in `page` has `status` (any status, if null). */
async function untilStatus(page, text, status, what) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const now = await statusOf(page, text);
    if (status === null ? now !== null : now === status) return;
    if (Date.now() > deadline) throw new Error(`timed out after 15000 ms waiting for ${what} (${now})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Breaks the first envelope the relay hands `page`; counts the retry requests it sends. */
async function breakFirstEnvelope(page) {
  const seen = { corrupted: 0, retries: 0 };
  await page.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (JSON.parse(m).type === 'retry') seen.retries++;
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'envelope' && seen.corrupted === 0) {
        const bytes = Buffer.from(frame.payload, 'base64');
        bytes[bytes.length - 1] ^= 1;
        frame.payload = bytes.toString('base64');
        seen.corrupted++;
        ws.send(JSON.stringify(frame));
        return;
      }
      ws.send(m);
    });
  });
  return seen;
}

/** Alice's and Bob's pages, signed in, with the relay in Bob's page breaking the first
 * envelope it hands him (see `breakFirstEnvelope`); their logs are printed if `t` fails. */
async function aliceAndBrokenBob(t) {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  const seen = await breakFirstEnvelope(bob);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  return { alice, bob, seen };
}

/** The texts of the messages in `page`'s only thread, in their order, once there are `n`. */
async function textsOnceThereAre(page, n) {
  await until(page, async (n) => {
    const [thread] = await window.client.threadList();
    return thread && (await window.client.threadMessages(thread.id)).length === n;
  }, n, { what: `${n} messages` });
  return page.evaluate(async () => {
    const [thread] = await window.client.threadList();
    return (await window.client.threadMessages(thread.id)).map((m) => m.text);
  });
}

test('an envelope that does not open is sent again on a fresh session and read once', async (t) => {
  // The relay, played in Bob's page: the first envelope it hands him has one bit flipped.
  const { alice, bob, seen } = await aliceAndBrokenBob(t);
  await bob.evaluate(() => {
    window.errors = [];
    window.client.addEventListener('error', (e) => window.errors.push(e.detail.code));
  });

  const text = 'through a broken envelope ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
  }, text);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 15000 });
  await bob.locator('.msg.in .text', { hasText: text }).waitFor({ timeout: 15000 });
  await untilStatus(alice, text, 'delivered', 'delivered');

  assert.equal(seen.corrupted, 1);
  assert.equal(seen.retries, 1, 'the broken envelope was answered with a retry request');
  assert.deepEqual(await bob.evaluate(() => window.errors), ['decrypt_failed']);
  // Read once, however many envelopes carried it.
  assert.equal(await bob.locator('.msg.in .text', { hasText: text }).count(), 1);
  // The conversation goes on both ways on the new session.
  await bob.evaluate(async () => {
    const [thread] = await window.client.threadList();
    await window.client.threadSendMessage(thread.id, 'and back');
  });
  await until(alice, async () => {
    const [thread] = await window.client.threadList();
    return (await window.client.threadMessages(thread.id)).some((m) => m.text === 'and back');
  }, null, { what: 'the answer' });
});

test('a message sent again after a retry request takes its place before its sender\'s later ones', async (t) => {
  const { alice, bob, seen } = await aliceAndBrokenBob(t);
  // The first is broken on its way and comes again only after the second has arrived.
  await alice.evaluate(async () => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, 'first');
    await window.client.threadSendMessage(id, 'second');
  });
  const texts = await textsOnceThereAre(bob, 2);
  assert.equal(seen.retries, 1, 'the first was asked for again');
  assert.deepEqual(texts, ['first', 'second']);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'second' }).waitFor();
  assert.deepEqual(await bob.locator('.msg.in .text').allTextContents(), ['first', 'second']);
  await bob.screenshot({ path: join(artifacts, 'retry-resend-in-place.png') });
});

test('a message dated earlier than its sender\'s last, and not asked for again, is added at the end', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  await alice.evaluate(async () => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, 'one');
    // Alice's clock jumps five minutes back (or a member dates a message back on purpose).
    const real = Date.now;
    Date.now = () => real() - 5 * 60 * 1000;
    await window.client.threadSendMessage(id, 'two');
  });
  assert.deepEqual(await textsOnceThereAre(bob, 2), ['one', 'two'], 'placed where it came, not back in the history');
});

test('in a group, only the device that could not open a message gets it again', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  const carol = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  const seen = await breakFirstEnvelope(bob);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(carol, env.server.base, 'carol');
  await openDemoAs(alice, env.server.base, 'alice');
  const text = 'to the group, once ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadMake('@bob + @carol');
    await window.client.threadSendMessage(id, text);
  }, text);
  const count = (page) => page.evaluate(async (text) => {
    let n = 0;
    for (const t of await window.client.threadList()) {
      n += (await window.client.threadMessages(t.id)).filter((m) => m.text === text).length;
    }
    return n;
  }, text);
  // Poll from here: each page's count, until both have the message (15 s at most).
  for (const deadline = Date.now() + 15000; Date.now() < deadline;) {
    if ((await count(bob)) > 0 && (await count(carol)) > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(seen.corrupted, 1);
  assert.equal(await count(bob), 1);
  assert.equal(await count(carol), 1);
});

test('a retry request the relay makes up for a device the message never went to is ignored', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'));
  });
  // Bob's acknowledgements are held back until the made-up request has been handled.
  const held = { acks: [], release: null };
  await bob.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    held.release = () => held.acks.splice(0).forEach((m) => server.send(m));
    ws.onMessage((m) => (JSON.parse(m).type === 'ack' ? held.acks.push(m) : server.send(m)));
    server.onMessage((m) => ws.send(m));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  // The relay, played in Alice's page: it learns her envelopes' seqs from the `stored`
  // answer, then hands her a retry request for one, labelled as a device of its own.
  const seen = { seqs: [], resends: 0 };
  let toPage;
  await alice.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    toPage = (frame) => ws.send(JSON.stringify(frame));
    ws.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'send' && frame.request.resend_of !== undefined) seen.resends++;
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'stored') seen.seqs.push(...frame.receipt.seqs);
      ws.send(m);
    });
  });
  await openDemoAs(alice, env.server.base, 'alice');
  const text = 'only for bob ' + Math.random().toString(36).slice(2);
  const bobId = await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
    const t = (await window.client.threadList()).find((t) => t.id === id);
    return t.members.find((m) => m.tag === 'bob').id;
  }, text);
  assert.ok(seen.seqs.length > 0, 'the send went over the socket');
  const seq = Buffer.alloc(8);
  seq.writeBigInt64BE(BigInt(seen.seqs[0]));
  const payload = Buffer.concat([Buffer.from('\0sotto-retry\0', 'latin1'), seq]).toString('base64');
  // Bob's user, but a device the message never went to.
  toPage({ type: 'envelope', seq: 9_000_000, sender_user: bobId, sender_device: 'd_relays_own', accepted_at: 0, payload });
  await alice.waitForTimeout(1500);
  assert.equal(seen.resends, 0, 'nothing was sent again');
  // Bob's real device got the message, and once its acknowledgement goes through Alice
  // sees it delivered: the made-up request did not consume what the delivery needs.
  await untilStatus(bob, text, null, 'the message at bob');
  held.release();
  await untilStatus(alice, text, 'delivered', 'delivered after the made-up request');
});

test('an expiry notice the relay makes up changes nothing it does not name truly', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'));
  });
  // Bob's acknowledgements are held back, so Alice's message stays "sent" meanwhile.
  const held = { acks: [], release: null };
  await bob.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    held.release = () => held.acks.splice(0).forEach((m) => server.send(m));
    ws.onMessage((m) => (JSON.parse(m).type === 'ack' ? held.acks.push(m) : server.send(m)));
    server.onMessage((m) => ws.send(m));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  // The relay, played in Alice's page: it learns her envelopes' seqs and devices, then
  // hands her expiry notices of its own making.
  const seen = { sent: [] };
  let toPage;
  await alice.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    toPage = (frame) => ws.send(JSON.stringify(frame));
    ws.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'send') seen.devices = frame.request.envelopes.map((e) => e.device_id);
      server.send(m);
    });
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'stored') seen.sent.push(...frame.receipt.seqs);
      ws.send(m);
    });
  });
  await openDemoAs(alice, env.server.base, 'alice');
  const text = 'not expired ' + Math.random().toString(36).slice(2);
  const bobId = await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
    const t = (await window.client.threadList()).find((t) => t.id === id);
    return t.members.find((m) => m.tag === 'bob').id;
  }, text);
  assert.ok(seen.sent.length > 0, 'the send went over the socket');
  const notice = (seq) => {
    const n = Buffer.alloc(8);
    n.writeBigInt64BE(BigInt(seq));
    return Buffer.concat([Buffer.from('\0sotto-expired\0', 'latin1'), n]).toString('base64');
  };
  let fake = 9_000_000;
  const inject = (device, seq) =>
    toPage({ type: 'envelope', seq: fake++, sender_user: bobId, sender_device: device, accepted_at: 0, payload: notice(seq) });
  const [bobsDevice] = seen.devices;
  // Labelled with a device the message never went to, or naming a seq Alice never sent.
  inject('d_relays_own', seen.sent[0]);
  inject(bobsDevice, 123_456_789);
  await alice.waitForTimeout(1500);
  assert.equal(await statusOf(alice, text), 'sent', 'a made-up notice marks nothing expired');
  // Once Bob's device acknowledges, the message is delivered; a notice after that, even a
  // true-looking one, does not take it back.
  await untilStatus(bob, text, null, 'the message at bob');
  held.release();
  await untilStatus(alice, text, 'delivered', 'delivered');
  inject(bobsDevice, seen.sent[0]);
  await alice.waitForTimeout(1500);
  assert.equal(await statusOf(alice, text), 'delivered', 'a delivered message stays delivered');
});

test('a retry request that comes after the sender reloaded is still answered', async (t) => {
  const alice = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'));
  });
  // Bob has a device (this browser profile), but is away when Alice writes.
  const away = await newPage(env.browser);
  await openDemoAs(away, env.server.base, 'bob');
  const bobsBrowser = away.context();
  await away.close();
  await openDemoAs(alice, env.server.base, 'alice');
  const text = 'written while bob was away ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
  }, text);
  assert.equal(await statusOf(alice, text), 'sent');
  // Alice reloads: what her browser sent is known only from its stored history now.
  await alice.reload();
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  // Bob comes back, and the relay breaks the envelope on its way to him.
  const bob = await bobsBrowser.newPage();
  const seen = await breakFirstEnvelope(bob);
  await openDemoAs(bob, env.server.base, 'bob');
  await untilStatus(bob, text, null, 'the message at bob, sent again');
  assert.equal(seen.retries, 1);
  await untilStatus(alice, text, 'delivered', 'delivered after the resend');
});

test('a message no device took before the server deleted it shows as not delivered', async (t) => {
  // A server of its own that sweeps every second, so the test can age an envelope.
  const dir = mkdtempSync(join(tmpdir(), 'sotto-expiry-'));
  const config = join(dir, 'sotto.toml');
  writeFileSync(config, 'orgs = []\nretention_interval_secs = 1\n');
  const server = await startServer({ args: ['--config', config] });
  const alice = await newPage(env.browser, { width: 480, height: 640 });
  t.after(async () => {
    if (t.error) console.log('alice:', alice.log.join('\n'));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const bob = await newPage(env.browser);
  await openDemoAs(bob, server.base, 'bob');
  await openDemoAs(alice, server.base, 'alice');
  const delivered = 'while bob was here ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
  }, delivered);
  await untilStatus(alice, delivered, 'delivered', 'the first message delivered');
  // Bob leaves for good; Alice writes again and reloads.
  await bob.close();
  const lost = 'after bob left ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const [thread] = await window.client.threadList();
    await window.client.threadSendMessage(thread.id, text);
  }, lost);
  await alice.reload();
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  assert.equal(await statusOf(alice, lost), 'sent');
  // A month passes for the server's queue.
  execFileSync('sqlite3', ['-cmd', '.timeout 5000', server.db,
    'UPDATE envelopes SET accepted_at = accepted_at - 31 * 86400000']);
  await untilStatus(alice, lost, 'expired', 'the expiry notice');
  assert.equal(await statusOf(alice, delivered), 'delivered', 'what Bob got stays delivered');
  await alice.locator('.thread-item').first().click();
  const shown = alice.locator('.msg.out', { hasText: lost }).locator('.state');
  await shown.waitFor({ timeout: 15000 });
  assert.equal(await shown.textContent(), 'Not delivered (expired)');
  await alice.screenshot({ path: join(artifacts, 'retry-expired.png') });
});
