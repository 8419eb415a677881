// End to end: typing indicators between real browsers through the real server. A member
// sees "Bob Brown is typing…" while Bob types, and no longer once he clears his draft,
// sends, or goes quiet; the page gets `typing` events; a group thread shows who types; and
// `typing: false` neither tells nor shows. Notices are sealed like messages and sent live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, waitConnected, until, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

/** Records the page's `typing` events in `window.typing`. */
async function recordTyping(page) {
  await page.evaluate(() => {
    window.typing = [];
    window.client.addEventListener('typing', (e) => window.typing.push(e.detail));
  });
}

async function signedIn(t, ...users) {
  const pages = [];
  for (const user of users) {
    const page = await newPage(env.browser);
    await openDemoAs(page, env.server.base, user);
    pages.push(page);
  }
  t.after(() => {
    if (t.error) pages.forEach((p, i) => console.log(users[i], p.log.join('\n')));
  });
  return pages;
}

test('a member sees the other typing until they clear, send or go quiet', async (t) => {
  const [bob, alice] = await signedIn(t, 'bob', 'alice');
  await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  const composer = (page) => page.getByLabel('Message', { exact: true });
  await composer(alice).fill('Hi Bob');
  await composer(alice).press('Enter');
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'Hi Bob' }).waitFor({ timeout: 10000 });
  await recordTyping(alice);
  const line = alice.locator('.typing');
  assert.equal(await line.isVisible(), false, 'no line while no one types');

  // Bob types: Alice sees it under the messages, and her page is told.
  await composer(bob).pressSequentially('Hel', { delay: 50 });
  await line.filter({ hasText: 'Bob Brown is typing…' }).waitFor({ timeout: 10000 });
  const bobId = await bob.evaluate(async () => (await window.client.threadList())[0].members.find((m) => m.name === 'Bob Brown')?.id);
  await until(alice, (id) => window.typing.some((e) => e.typing && e.userId === id && e.name === 'Bob Brown'), bobId, { what: 'a typing event' });
  await alice.screenshot({ path: join(artifacts, 'typing-desktop.png') });

  // He clears his draft: the line goes at once (a stop), not after the lapse.
  await composer(bob).fill('');
  await composer(bob).press('Backspace');
  await line.filter({ hasText: 'typing' }).waitFor({ state: 'hidden', timeout: 4000 });
  await until(alice, (id) => window.typing.some((e) => !e.typing && e.userId === id), bobId, { what: 'a stop event' });

  // He types again (at a person's pace: a start within a second of a stop is dropped, and
  // the next keystroke says it) and sends: his message ends the typing.
  await composer(bob).pressSequentially('Hello Alice', { delay: 150 });
  await line.filter({ hasText: 'Bob Brown is typing…' }).waitFor({ timeout: 10000 });
  await composer(bob).press('Enter');
  await alice.locator('.msg.in .text', { hasText: 'Hello Alice' }).waitFor({ timeout: 10000 });
  assert.equal(await line.textContent(), '', 'the message ends the typing');

  // He types and stops without a word: the line lapses by itself.
  await composer(bob).pressSequentially('So', { delay: 20 });
  await line.filter({ hasText: 'Bob Brown is typing…' }).waitFor({ timeout: 10000 });
  const shown = Date.now();
  await line.filter({ hasText: 'typing' }).waitFor({ state: 'hidden', timeout: 12000 });
  assert.ok(Date.now() - shown > 3000, 'shown for a while, not dropped at once');

  // Nothing of it was ever a message: no one has an extra message or an unread count.
  const messages = await alice.evaluate(async () => {
    const [thread] = await window.client.threadList();
    return (await window.client.threadMessages(thread.id)).map((m) => m.text);
  });
  assert.deepEqual(messages, ['Hi Bob', 'Hello Alice']);
});

test('a group sees who types, by the API; typing: false neither tells nor shows', async (t) => {
  const [bob, carol, alice] = await signedIn(t, 'bob', 'carol', 'alice');
  const threadId = await alice.evaluate(() => window.client.threadStartWithExpression('@bob + @carol'));
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'Hello both'), threadId);
  for (const page of [bob, carol]) {
    await until(page, async (id) => (await window.client.threadMessages(id).catch(() => [])).length === 1, threadId, { what: 'the first message' });
    await recordTyping(page);
  }
  await recordTyping(alice);

  // Carol and Bob type through the API: Alice's open thread names both.
  await carol.evaluate((id) => window.client.threadTyping(id), threadId);
  await bob.evaluate((id) => window.client.threadTyping(id, true), threadId);
  await alice.locator('.typing', { hasText: /^(Bob Brown and Carol Chen|Carol Chen and Bob Brown) are typing…$/ }).waitFor({ timeout: 10000 });
  await until(bob, () => window.typing.some((e) => e.typing && e.name === 'Carol Chen'), null, { what: 'Bob told of Carol' });
  // Bob stops: Alice's line keeps Carol alone.
  await bob.evaluate((id) => window.client.threadTyping(id, false), threadId);
  await alice.locator('.typing', { hasText: /^Carol Chen is typing…$/ }).waitFor({ timeout: 10000 });
  await alice.screenshot({ path: join(artifacts, 'typing-group.png') });

  // Carol's browser starts again with typing: false.
  const jwt = await carol.evaluate(async () => {
    const res = await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol' }) });
    return (await res.json()).jwt;
  });
  await carol.evaluate(async (token) => {
    window.client.destroy();
    window.client = new sotto.Client(document.getElementById('messenger'), { jwt: token }, { typing: false });
    window.typing = [];
    window.client.addEventListener('typing', (e) => window.typing.push(e.detail));
  }, jwt);
  await waitConnected(carol);
  await alice.locator('.typing', { hasText: 'typing' }).waitFor({ state: 'hidden', timeout: 12000 });
  await alice.evaluate(() => { window.typing = []; });
  // Carol's calls tell no one; Alice's typing reaches Bob but not Carol's page.
  await carol.evaluate((id) => window.client.threadTyping(id), threadId);
  await alice.evaluate((id) => window.client.threadTyping(id), threadId);
  await until(bob, () => window.typing.some((e) => e.typing && e.name === 'Alice Adams'), null, { what: 'Bob told of Alice' });
  await alice.waitForTimeout(1500);
  assert.deepEqual(await carol.evaluate(() => window.typing), [], 'Carol is shown no one typing');
  assert.deepEqual(await alice.evaluate(() => window.typing), [], 'no one is told Carol types');
});

test('a notice written more than a minute from the reader\'s clock is not shown', async (t) => {
  // Alice's clock runs two minutes ahead: what either sends the other looks stale, as a
  // notice the relay held back or replays later would.
  const alice = await newPage(env.browser);
  await alice.addInitScript(() => {
    const real = Date.now;
    Date.now = () => real() + 120_000;
  });
  const [bob] = await signedIn(t, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  const threadId = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'hello'), threadId);
  await until(bob, async (id) => (await window.client.threadMessages(id).catch(() => [])).length === 1, threadId, { what: 'the message' });
  await recordTyping(alice);
  await recordTyping(bob);
  await bob.evaluate((id) => window.client.threadTyping(id), threadId);
  await alice.evaluate((id) => window.client.threadTyping(id), threadId);
  await alice.waitForTimeout(2000);
  assert.deepEqual(await alice.evaluate(() => window.typing), []);
  assert.deepEqual(await bob.evaluate(() => window.typing), []);
});
