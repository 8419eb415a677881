// Retry receipts in real Chromium pages, between two people and in a group: an envelope that Bob's browser cannot open (the
// relay flipped a bit in it) is answered with a retry request, not an ack; Alice's browser
// sends the message again on a fresh session; Bob reads it once, and Alice sees it
// delivered only then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, newPage, openDemoAs, until } from './harness.mjs';

const env = useServerAndBrowser();

test('an envelope that does not open is sent again on a fresh session and read once', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  // The relay, played in Bob's page: the first envelope it hands him has one bit flipped.
  const seen = { corrupted: 0, retries: 0, acks: 0 };
  await bob.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'retry') seen.retries++;
      if (frame.type === 'ack') seen.acks++;
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
  await openDemoAs(bob, env.server.base, 'bob');
  await bob.evaluate(() => {
    window.errors = [];
    window.client.addEventListener('error', (e) => window.errors.push(e.detail.code));
  });
  await openDemoAs(alice, env.server.base, 'alice');

  const text = 'through a broken envelope ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
  }, text);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 15000 });
  await bob.locator('.msg.in .text', { hasText: text }).waitFor({ timeout: 15000 });
  await until(alice, async (text) => {
    const [thread] = await window.client.threadList();
    const m = (await window.client.threadMessages(thread.id)).find((m) => m.text === text);
    return m && m.status === 'delivered';
  }, text, { what: 'delivered' });

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

test('in a group, only the device that could not open a message gets it again', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  const carol = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  let corrupted = 0;
  await bob.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'envelope' && corrupted === 0) {
        const bytes = Buffer.from(frame.payload, 'base64');
        bytes[bytes.length - 1] ^= 1;
        frame.payload = bytes.toString('base64');
        corrupted++;
        ws.send(JSON.stringify(frame));
        return;
      }
      ws.send(m);
    });
  });
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
  assert.equal(corrupted, 1);
  assert.equal(await count(bob), 1);
  assert.equal(await count(carol), 1);
});
