// One person, two tabs of one browser: only one tab at a time holds the account (a Web
// Lock), so no ratchet key ever encrypts two messages. The second tab waits and says so;
// when the first closes it takes over with the stored state, and nothing is lost or
// received twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, waitConnected, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

/** Every pairwise ratchet header (recipient device, ratchet key, counters) a page sends. */
function recordRatchetHeaders(page, seen) {
  page.on('websocket', (ws) =>
    ws.on('framesent', ({ payload }) => {
      let frame;
      try {
        frame = JSON.parse(payload);
      } catch {
        return;
      }
      if (frame.type !== 'send') return;
      for (const env of frame.request.envelopes) {
        const bytes = Buffer.from(env.payload, 'base64');
        // version (2) then parts: kind (1), length (4, big-endian), bytes.
        for (let at = 2; at < bytes.length; ) {
          const kind = bytes[at];
          const len = bytes.readUInt32BE(at + 1);
          const part = bytes.subarray(at + 5, at + 5 + len);
          at += 5 + len;
          if (kind !== 1 && kind !== 2) continue;
          const message = kind === 1 ? part.subarray(105) : part;
          const header = `${env.device_id}/${message.subarray(0, 40).toString('hex')}`;
          const ciphertexts = seen.get(header) ?? new Set();
          ciphertexts.add(message.toString('hex'));
          seen.set(header, ciphertexts);
        }
      }
    }),
  );
}

const texts = (page) =>
  page.evaluate(async () => {
    const [thread] = await window.client.threadList();
    return (await window.client.threadMessages(thread.id)).map((m) => `${m.outgoing ? '>' : '<'} ${m.text}`);
  });

test('a second tab of the same person waits, then takes over without losing or repeating anything', async (t) => {
  const bob = await newPage(env.browser);
  const context = await env.browser.newContext({ viewport: { width: 480, height: 640 } });
  const tab1 = await context.newPage();
  const tab2 = await context.newPage();
  const log = [];
  for (const p of [tab1, tab2]) p.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  t.after(() => {
    if (t.error) console.log(log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  const headers = new Map();
  recordRatchetHeaders(tab1, headers);
  recordRatchetHeaders(tab2, headers);

  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(tab1, env.server.base, 'alice');
  await tab2.goto(`${env.server.base}/?as=alice`);
  await tab2.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });
  await tab2.screenshot({ path: join(artifacts, 'tabs-second-tab-waits.png') });

  const send = async (page, text) => {
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await page.locator('.msg.out .text', { hasText: text }).waitFor();
  };
  await tab1.getByLabel('New thread: who to talk to').fill('@bob');
  await tab1.getByRole('button', { name: 'Start' }).click();
  await tab1.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();
  for (const n of [1, 2, 3]) await send(tab1, `from tab one ${n}`);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 10000 });
  await bob.locator('.msg.in .text', { hasText: 'from tab one 3' }).waitFor({ timeout: 10000 });
  await send(bob, 'reply one');
  await tab1.locator('.msg.in .text', { hasText: 'reply one' }).waitFor({ timeout: 10000 });

  // The first tab closes mid-conversation; Bob writes while no tab of Alice's is on line.
  await tab1.close();
  await send(bob, 'reply two');
  await waitConnected(tab2);
  await tab2.locator('.thread-item', { hasText: 'Bob Brown' }).click();
  await tab2.locator('.msg.in .text', { hasText: 'reply two' }).waitFor({ timeout: 10000 });
  for (const n of [1, 2]) await send(tab2, `from tab two ${n}`);
  await bob.locator('.msg.in .text', { hasText: 'from tab two 2' }).waitFor({ timeout: 10000 });
  await send(bob, 'reply three');
  await tab2.locator('.msg.in .text', { hasText: 'reply three' }).waitFor({ timeout: 10000 });
  await tab2.screenshot({ path: join(artifacts, 'tabs-second-tab-took-over.png') });

  const expected = [
    '> from tab one 1', '> from tab one 2', '> from tab one 3', '< reply one', '< reply two',
    '> from tab two 1', '> from tab two 2', '< reply three',
  ];
  assert.deepEqual(await texts(tab2), expected, 'the second tab has everything, once');
  const flip = (s) => (s[0] === '>' ? '<' : '>') + s.slice(1);
  assert.deepEqual(await texts(bob), expected.map(flip), 'Bob received each message exactly once');

  assert.ok(headers.size >= 5, `ratchet headers were recorded (${headers.size})`);
  for (const [header, ciphertexts] of headers) {
    assert.equal(ciphertexts.size, 1, `ratchet header ${header} was used for two ciphertexts`);
  }
  await context.close();
});
