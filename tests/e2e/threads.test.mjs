// The threads example, used as a person would: a thread from an expression with a title,
// the title changed for everyone, disappearing messages, read marks, members removed and
// added, leaving, and this device's archive; plus threadEnsure and paging through the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

async function openAs(user) {
  const page = await newPage(env.browser, { width: 1100, height: 800 });
  await page.goto(`${env.server.base}/examples/threads/?user=${user}`);
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  return page;
}

async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

const act = (page, name) => page.getByRole('button', { name, exact: true }).click();

test('threads: expressions, attributes, expiration, read marks and membership', async () => {
  const [alice, bob, carol] = [await openAs('alice'), await openAs('bob'), await openAs('carol')];

  await alice.getByLabel('Thread expression').fill('@bob + @carol');
  await alice.getByLabel('New thread title').fill('Launch plans');
  await act(alice, 'Make thread');
  await alice.locator('.thread-title', { hasText: 'Launch plans' }).waitFor();
  await send(alice, 'Kick-off at ten');
  for (const page of [bob, carol]) {
    await page.locator('.thread-item', { hasText: 'Launch plans' }).click();
    await page.locator('.msg.in .text', { hasText: 'Kick-off at ten' }).waitFor();
    await page.locator('.members', { hasText: 'Alice Adams, Bob Brown, Carol Chen' }).waitFor();
  }
  // Bob and Carol opened it: Alice sees her message read.
  await alice.locator('.msg.out .state', { hasText: 'Read' }).waitFor({ timeout: 10000 });

  // A new title reaches everyone.
  await alice.getByLabel('Title', { exact: true }).fill('Launch: Tuesday');
  await act(alice, 'Set title');
  await bob.locator('.thread-title', { hasText: 'Launch: Tuesday' }).waitFor({ timeout: 10000 });
  await carol.locator('.thread-title', { hasText: 'Launch: Tuesday' }).waitFor({ timeout: 10000 });

  // Disappearing messages: gone on every device after 3 s.
  await bob.getByLabel('Seconds').fill('3');
  await bob.getByRole('button', { name: 'Set expiration', exact: true }).click();
  await alice.locator('.members', { hasText: 'disappear after 3 s' }).waitFor({ timeout: 10000 });
  await send(bob, 'this will self-destruct');
  await alice.locator('.msg.in .text', { hasText: 'self-destruct' }).waitFor();
  await carol.locator('.msg.in .text', { hasText: 'self-destruct' }).waitFor();
  await alice.screenshot({ path: join(artifacts, 'example-threads.png') });
  for (const page of [alice, bob, carol]) {
    await page.locator('.msg .text', { hasText: 'self-destruct' }).waitFor({ state: 'detached', timeout: 10000 });
  }
  const stored = await alice.evaluate(async () => {
    const [t] = await window.client.threadList();
    return (await window.client.threadMessages(t.id)).map((m) => m.text);
  });
  assert.deepEqual(stored, ['Kick-off at ten'], 'the expired message is gone from storage too');
  await bob.getByLabel('Seconds').fill('0');
  await bob.getByRole('button', { name: 'Set expiration', exact: true }).click();
  await alice.locator('.members', { hasText: 'disappear' }).waitFor({ state: 'detached', timeout: 10000 });

  // Carol is removed: she is told, and no longer receives.
  await alice.getByLabel('Member', { exact: true }).fill('@carol');
  await act(alice, 'Remove');
  await carol.locator('.members', { hasText: 'no longer a member' }).waitFor({ timeout: 10000 });
  await bob.locator('.members', { hasText: 'Alice Adams, Bob Brown' }).waitFor({ timeout: 10000 });
  assert.ok(!(await bob.locator('.members').textContent()).includes('Carol'));
  await send(alice, 'just the two of us');
  await bob.locator('.msg.in .text', { hasText: 'just the two of us' }).waitFor();
  await carol.waitForTimeout(1000);
  assert.equal(await carol.locator('.msg .text', { hasText: 'just the two of us' }).count(), 0);
  const carolCode = await carol.evaluate(async () => {
    const [t] = await window.client.threadList();
    return window.client.threadSendMessage(t.id, 'let me in').catch((e) => e.code);
  });
  assert.equal(carolCode, 'not_a_member');

  // Added back, she receives again; Bob leaves, and Alice's thread drops him.
  await alice.getByLabel('Member', { exact: true }).fill('@carol');
  await act(alice, 'Add');
  await carol.locator('.members', { hasText: 'Alice Adams, Bob Brown, Carol Chen' }).waitFor({ timeout: 10000 });
  await act(bob, 'Leave');
  await alice.locator('.members', { hasText: 'Alice Adams, Carol Chen' }).waitFor({ timeout: 10000 });
  await bob.locator('.members', { hasText: 'no longer a member' }).waitFor();

  // Archive hides it on this device only; restore brings it back.
  await act(alice, 'Archive');
  await alice.locator('.thread-item', { hasText: 'Launch: Tuesday' }).waitFor({ state: 'detached' });
  assert.equal(await carol.locator('.thread-item', { hasText: 'Launch: Tuesday' }).count(), 1);
  await act(alice, 'Restore');
  await alice.locator('.thread-item', { hasText: 'Launch: Tuesday' }).waitFor();
});

test('threadEnsure finds the thread with the same members; paging and housekeeping', async () => {
  const alice = await openAs('alice');
  await openAs('bob');
  const result = await alice.evaluate(async () => {
    const c = window.client;
    const a = await c.threadEnsure('@bob');
    const b = await c.threadEnsure('@bob');
    for (let i = 0; i < 5; i++) await c.threadSendMessage(a, 'm' + i);
    const all = await c.threadMessages(a);
    const last2 = await c.threadMessages(a, { limit: 2 });
    const before = await c.threadMessages(a, { limit: 2, before: all[3].sentAt });
    const destroyed = await c.threadDestroyMessages(a, [all[0].id]);
    await c.threadSetAttribute(a, 'topic', { level: 2 });
    const attrs = await c.threadListAttributes(a);
    const other = await c.threadMake('@carol');
    await c.threadExpunge(other);
    const ids = (await c.threadList()).map((t) => t.id);
    const errors = [];
    for (const call of [() => c.threadSetExpiration(a, -1), () => c.threadMake('@bob', 'not an object'), () => c.threadOpen(other)]) {
      errors.push(await call().then(() => 'resolved', (e) => e.code));
    }
    return {
      same: a === b,
      last2: last2.map((m) => m.text),
      before: before.map((m) => m.text),
      destroyed,
      left: (await c.threadMessages(a)).length,
      attrs,
      expunged: !ids.includes(other),
      errors,
    };
  });
  assert.deepEqual(result, {
    same: true,
    last2: ['m3', 'm4'],
    before: ['m1', 'm2'],
    destroyed: 1,
    left: 4,
    attrs: { topic: { level: 2 } },
    expunged: true,
    errors: ['bad_expiration', 'bad_attributes', 'unknown_thread'],
  });
});
