// Sign-in by external auth code, as TypingMind does: a link with ?externalAuthCode= (the
// token then leaves the address bar), and a widget script tag that mounts itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('a sign-in link signs in and takes the token out of the address bar', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/examples/external-auth/`);
  await page.locator('.status', { hasText: 'Waiting for sign-in' }).waitFor();
  await page.getByRole('button', { name: 'Bob' }).click();
  await page.getByRole('link', { name: /sign-in link for bob/ }).click();
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await page.locator('.who', { hasText: 'Bob Brown' }).waitFor();
  assert.ok(!page.url().includes('externalAuthCode'), `the token is still in the address: ${page.url()}`);
  const history = await page.evaluate(() => location.search);
  assert.equal(history, '');
});

test('the widget tag is a launcher: opens, minimises, remembers, counts unread, and reopens the same conversation', async (t) => {
  const bob = await newPage(env.browser);
  const page = await newPage(env.browser, { width: 900, height: 700 });
  t.after(() => {
    if (t.error) console.log('alice:', page.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  await page.goto(`${env.server.base}/examples/external-auth/widget.html?user=alice`);
  const widget = page.locator('#sotto-widget');
  const launcher = page.getByRole('button', { name: /Open the chat/ });
  // A first visit starts minimised: only the round button shows.
  await launcher.waitFor();
  assert.equal(await widget.isVisible(), false);
  await launcher.click();
  await widget.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await widget.locator('.thread-title', { hasText: 'Support' }).waitFor();
  const box = await widget.boundingBox();
  assert.ok(box.x + box.width <= 900 && box.y + box.height <= 700 && box.width === 360, JSON.stringify(box));
  await page.screenshot({ path: join(artifacts, 'widget.png') });
  // The next page load reopens that conversation, and the panel, as it was left.
  const first = await page.evaluate(() => window.sotto.widget.threadList().then((l) => l.map((x) => x.id)));
  assert.equal(first.length, 1);
  await page.reload();
  await widget.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await widget.locator('.thread-title', { hasText: 'Support' }).waitFor();
  const again = await page.evaluate(() => window.sotto.widget.threadList().then((l) => l.map((x) => x.id)));
  assert.deepEqual(again, first);

  // Minimised, a message from the desk counts on the button and is not claimed read.
  await page.evaluate((id) => window.sotto.widget.threadSendMessage(id, 'I need help with my order'), first[0]);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await page.getByRole('button', { name: 'Minimise the chat' }).click();
  assert.equal(await widget.isVisible(), false);
  await bob.getByLabel('Message', { exact: true }).fill('Happy to help');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await page.locator('#sotto-launcher .sotto-badge', { hasText: '1' }).waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: 'Open the chat (1 unread)' }).waitFor();
  await page.screenshot({ path: join(artifacts, 'widget-launcher.png') });
  await bob.locator('.msg.out .state', { hasText: 'Delivered' }).waitFor({ timeout: 10000 });
  // Opened, it is read: the badge goes and Bob sees "Read".
  await page.locator('#sotto-launcher').click();
  await bob.locator('.msg.out .state', { hasText: 'Read' }).waitFor({ timeout: 10000 });
  await page.locator('#sotto-launcher .sotto-badge').waitFor({ state: 'hidden' });
  // Escape in the panel minimises it and gives the focus back to the button.
  await widget.getByLabel('Message', { exact: true }).press('Escape');
  assert.equal(await widget.isVisible(), false);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'sotto-launcher');
});

test('on a phone the widget opens full screen, here in German', async () => {
  const phone = await newPage(env.browser, { width: 375, height: 667 });
  await phone.goto(`${env.server.base}/examples/external-auth/widget.html?user=carol&locale=de`);
  await phone.getByRole('button', { name: 'Chat öffnen' }).click();
  const widget = phone.locator('#sotto-widget');
  await widget.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  assert.equal(await widget.getAttribute('aria-label'), 'Chat');
  assert.equal(await widget.locator('.status').textContent(), 'Verbunden');
  const box = await widget.boundingBox();
  // The whole screen but a strip at the top for the button that minimises it.
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 48, 375, 619]);
  await phone.screenshot({ path: join(artifacts, 'widget-phone.png') });
  // Its button stays on top to minimise it again.
  await phone.getByRole('button', { name: 'Chat minimieren' }).click();
  assert.equal(await widget.isVisible(), false);
});
