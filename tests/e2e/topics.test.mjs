// End to end: threads with the same people told apart. "Start" with people one already
// talks to opens that thread instead of making another; "Rename" gives the open thread a
// title every member sees (empty names it by its members again); "New topic" starts
// another thread with the same people under its own title. All through the UI, between
// two real browsers and the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, aliceAndBob, until, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('Start reopens the thread with the same people; Rename and New topic name threads for everyone', async (t) => {
  const { alice, bob } = await aliceAndBob(t, env);
  const threads = (page) => page.evaluate(() => window.client.threadList());
  const start = async (expr) => {
    await alice.getByLabel('New thread: who to talk to').fill(expr);
    await alice.getByLabel('New thread: who to talk to').press('Enter');
    await until(alice, () => document.querySelector('#messenger').shadowRoot.querySelector('.new-thread input').value === '', null, { what: 'the field to empty' });
  };
  const say = async (text) => {
    await alice.getByLabel('Message', { exact: true }).fill(text);
    await alice.getByLabel('Message', { exact: true }).press('Enter');
  };

  await start('@bob');
  await alice.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();
  await say('About the Q3 report');
  await start('@bob');
  assert.equal((await threads(alice)).length, 1, 'the same people: the same thread');
  assert.equal(await alice.locator('.msg .text').last().textContent(), 'About the Q3 report');

  // Rename, confirmed with Enter: both see the title.
  await alice.getByRole('button', { name: 'Rename this thread' }).click();
  const title = alice.getByLabel('Title', { exact: true });
  assert.equal(await title.inputValue(), '', 'no title yet');
  await title.fill('  Q3 report  ');
  await alice.screenshot({ path: join(artifacts, 'topics-rename-dialog.png') });
  await title.press('Enter');
  await alice.locator('.thread-title', { hasText: 'Q3 report' }).waitFor();
  await bob.locator('.thread-item .name', { hasText: 'Q3 report' }).waitFor({ timeout: 10000 });
  assert.equal(await alice.locator('.thread-title').textContent(), 'Q3 report', 'trimmed');

  // A new topic with the same people, under its own title.
  await alice.getByRole('button', { name: 'New topic with the same people' }).click();
  await alice.getByLabel('Title', { exact: true }).fill('Holidays');
  await alice.setViewportSize({ width: 320, height: 640 });
  await alice.evaluate(() => document.querySelector('#messenger').setAttribute('data-sotto-theme', 'dark'));
  await alice.screenshot({ path: join(artifacts, 'topics-new-topic-dialog-320-dark.png') });
  await alice.evaluate(() => document.querySelector('#messenger').setAttribute('data-sotto-theme', 'light'));
  await alice.setViewportSize({ width: 1000, height: 700 });
  await alice.locator('.dialog').getByRole('button', { name: 'Start' }).click();
  await alice.locator('.thread-title', { hasText: 'Holidays' }).waitFor();
  assert.equal(await alice.locator('.members').textContent(), 'Alice Adams, Bob Brown');
  await say('Who is off in August?');
  await bob.locator('.thread-item .name', { hasText: 'Holidays' }).waitFor({ timeout: 10000 });
  const names = async (page) => (await threads(page)).map((x) => x.title).sort();
  assert.deepEqual(await names(alice), ['Holidays', 'Q3 report']);
  await until(bob, async () => (await window.client.threadList()).length === 2, null, { what: 'both threads at Bob' });
  assert.deepEqual(await names(bob), ['Holidays', 'Q3 report']);
  await alice.screenshot({ path: join(artifacts, 'topics-two-threads.png') });
  await alice.setViewportSize({ width: 320, height: 640 });
  await alice.screenshot({ path: join(artifacts, 'topics-320.png') });
  await alice.setViewportSize({ width: 1000, height: 700 });

  // Cancel changes nothing; an empty title names the thread by its members again.
  await alice.getByRole('button', { name: 'Rename this thread' }).click();
  assert.equal(await alice.getByLabel('Title', { exact: true }).inputValue(), 'Holidays', 'the title to correct');
  await alice.getByLabel('Title', { exact: true }).fill('Something else');
  await alice.keyboard.press('Escape');
  assert.equal(await alice.locator('.thread-title').textContent(), 'Holidays');
  await alice.getByRole('button', { name: 'Rename this thread' }).click();
  await alice.getByLabel('Title', { exact: true }).fill('');
  await alice.locator('.dialog').getByRole('button', { name: 'Save' }).click();
  await alice.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();
  await bob.locator('.thread-item .name', { hasText: 'Holidays' }).waitFor({ state: 'detached', timeout: 10000 });

  // A title from a page is text, and a long one is cut to 100 characters.
  await alice.getByRole('button', { name: 'Rename this thread' }).click();
  await alice.getByLabel('Title', { exact: true }).fill(`<img src=x onerror=alert(1)>${'x'.repeat(200)}`);
  await alice.getByLabel('Title', { exact: true }).press('Enter');
  await alice.locator('.thread-title', { hasText: '<img' }).waitFor();
  const shown = await alice.locator('.thread-title').textContent();
  assert.equal(shown.length, 100);
  assert.equal(await alice.locator('.thread-title img').count(), 0);
});
