// End to end: search over the history a browser holds, by the page API and the search field
// in the thread list, between real browsers through the real server. The server is never
// asked: what is searched is the decrypted history on the device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, until, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('search finds messages by every word in any case, by the API and the search field', async (t) => {
  const bob = await newPage(env.browser);
  const alice = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  const withBob = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  const withBoth = await alice.evaluate(() => window.client.threadStartWithExpression('@bob + @carol'));
  const send = (thread, text) => alice.evaluate(([id, tx]) => window.client.threadSendMessage(id, tx), [thread, text]);
  await send(withBob, 'The Parcel for Zürich left today');
  await send(withBob, 'lunch at noon?');
  await send(withBoth, 'Where is the parcel now?');
  await until(bob, async () => (await window.client.search('parcel')).length === 2, null, { what: 'Bob to hold both' });

  // By the API, on Bob's device: every word, any case (Unicode too), newest first.
  const texts = (found) => found.map((m) => m.text);
  assert.deepEqual(texts(await bob.evaluate(() => window.client.search('PARCEL'))), ['Where is the parcel now?', 'The Parcel for Zürich left today']);
  assert.deepEqual(texts(await bob.evaluate(() => window.client.search('zürich parcel'))), ['The Parcel for Zürich left today']);
  assert.deepEqual(texts(await bob.evaluate((id) => window.client.search('parcel', { threadId: id }), withBob)), ['The Parcel for Zürich left today']);
  assert.deepEqual(texts(await bob.evaluate(() => window.client.search('parcel', { limit: 1 }))), ['Where is the parcel now?']);
  assert.deepEqual(await bob.evaluate(() => window.client.search('nothing like it')), []);
  const found = (await bob.evaluate(() => window.client.search('lunch')))[0];
  assert.equal(found.senderName, 'Alice Adams');
  assert.equal(found.threadId, withBob);

  // Bad input: a typed rejection, nothing else.
  const code = (fn, arg) => bob.evaluate(([f, a]) => window.client.search(...(f === 'empty' ? ['  '] : f === 'long' ? ['x'.repeat(300)] : f === 'limit' ? ['parcel', { limit: 0 }] : ['parcel', { threadId: a }])).then(() => 'resolved', (e) => e.code), [fn, arg]);
  assert.equal(await code('empty'), 'bad_argument');
  assert.equal(await code('long'), 'bad_argument');
  assert.equal(await code('limit'), 'bad_option');
  assert.equal(await code('thread', 'no-such-thread'), 'unknown_thread');

  // The search field: results in place of the threads, each with its thread and sender.
  const field = bob.getByLabel('Search messages');
  await field.fill('parcel');
  const results = bob.locator('.threads [data-found]');
  assert.equal(await results.count(), 2);
  assert.match(await results.first().textContent(), /Alice Adams: Where is the parcel now\?/);
  await bob.screenshot({ path: join(artifacts, 'search-desktop.png') });
  // A click opens the thread at the message found, with the focus on it.
  await results.nth(1).click();
  await bob.locator('.thread-title', { hasText: 'Alice Adams' }).waitFor();
  const focused = await bob.evaluate(() => document.querySelector('#messenger').shadowRoot.activeElement?.textContent ?? '');
  assert.match(focused, /The Parcel for Zürich left today/);
  // Words that match nothing say so; an empty field lists the threads again.
  await field.fill('no such words');
  await bob.locator('.threads .none', { hasText: 'No messages found' }).waitFor();
  await field.fill('');
  await bob.locator('.thread-item', { hasText: 'Alice Adams, Carol Chen' }).waitFor();
  assert.equal(await results.count(), 0);

  // A message that arrives while searching shows up in the results.
  await field.fill('parcel');
  await send(withBob, 'Parcel delivered!');
  await bob.locator('.threads [data-found]', { hasText: 'Parcel delivered!' }).waitFor({ timeout: 10000 });
  await bob.setViewportSize({ width: 360, height: 640 });
  await bob.screenshot({ path: join(artifacts, 'search-phone.png') });
});
