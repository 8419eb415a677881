// The embedding itself: two clients on one page work independently and destroy() releases
// one; the thread list collapses; the dark theme; and a keyboard-only conversation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('two clients on one page, one destroyed, the other carries on', async () => {
  const page = await newPage(env.browser, { width: 1200, height: 700 });
  await page.goto(`${env.server.base}/`);
  await page.evaluate(async () => {
    const mint = async (user) =>
      (await (await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) })).json()).jwt;
    document.getElementById('choose').hidden = true;
    const box = document.getElementById('messenger');
    box.style.display = 'flex';
    box.style.gap = '8px';
    box.style.maxWidth = 'none';
    window.clients = {};
    for (const user of ['alice', 'bob']) {
      const el = document.createElement('div');
      el.id = 'chat-' + user;
      el.style.flex = '1';
      box.appendChild(el);
      window.clients[user] = new sotto.Client(el, { jwt: await mint(user) }, { theme: user === 'bob' ? 'dark' : 'light' });
    }
  });
  const alice = page.locator('#chat-alice');
  const bob = page.locator('#chat-bob');
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await bob.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  const threadId = await page.evaluate(() => window.clients.alice.threadStartWithExpression('@bob'));
  await alice.getByLabel('Message', { exact: true }).fill('from the left pane');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'from the left pane' }).waitFor();
  await bob.locator('.day').first().waitFor();
  await page.screenshot({ path: join(artifacts, 'two-clients-light-dark.png') });
  const bg = (pane) => pane.locator('.sotto').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(await bg(bob), 'rgb(23, 26, 33)', 'the dark theme applies to its own client only');
  assert.equal(await bg(alice), 'rgb(255, 255, 255)');
  // The page's own rule for its element overrides the palette.
  await page.addStyleTag({ content: '#chat-alice { --sotto-bg: rgb(250, 240, 230); }' });
  assert.equal(await bg(alice), 'rgb(250, 240, 230)');

  await page.evaluate(() => window.clients.alice.destroy());
  assert.equal(await alice.locator('.sotto').count(), 0, 'destroy() unmounts');
  const code = await page.evaluate((id) => window.clients.alice.threadOpen(id).catch((e) => e.code), threadId);
  assert.equal(code, 'destroyed');
  // Bob's client is untouched and still talks to the server.
  await bob.getByLabel('Message', { exact: true }).fill('still here');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await bob.locator('.msg.out .state', { hasText: 'Sent' }).waitFor();
  await bob.locator('.status[data-connected="true"]').waitFor();

  // The thread list collapses and expands, from the page and from the header button.
  assert.equal(await page.evaluate(() => window.clients.bob.navPanelToggle(true)), true);
  await bob.locator('nav').waitFor({ state: 'hidden' });
  await bob.getByRole('button', { name: 'Show or hide the threads' }).click();
  await bob.locator('nav').waitFor({ state: 'visible' });
});

test('a conversation by keyboard alone', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/?as=carol`);
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  // Into the new-thread field and out again, with Tab and Enter only.
  await page.getByLabel('New thread: who to talk to').focus();
  await page.keyboard.type('@alice');
  await page.keyboard.press('Enter');
  await page.locator('.thread-title', { hasText: 'Alice Adams' }).waitFor();
  // Opening a thread puts the focus in the composer.
  assert.equal(await page.evaluate(() => document.activeElement.id === 'messenger' && document.activeElement.shadowRoot.activeElement.tagName), 'TEXTAREA');
  await page.keyboard.type('typed without a mouse');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('second line');
  await page.keyboard.press('Enter');
  await page.locator('.msg.out .text').filter({ hasText: 'second line' }).waitFor();
  assert.equal(await page.locator('.msg.out .text').last().textContent(), 'typed without a mouse\nsecond line');
});
