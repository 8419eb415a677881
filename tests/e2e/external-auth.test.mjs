// Sign-in by external auth code, as TypingMind does: a link with ?externalAuthCode= (the
// token then leaves the address bar), and a widget script tag that mounts itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, artifacts } from './harness.mjs';

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

test('the widget script tag mounts a signed-in chat with @support open', async () => {
  const page = await newPage(env.browser, { width: 900, height: 700 });
  await page.goto(`${env.server.base}/examples/external-auth/widget.html?user=alice`);
  const widget = page.locator('#sotto-widget');
  await widget.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await widget.locator('.thread-title', { hasText: 'Support' }).waitFor();
  const box = await widget.boundingBox();
  assert.ok(box.x + box.width <= 900 && box.y + box.height <= 700 && box.width === 360, JSON.stringify(box));
  await page.screenshot({ path: join(artifacts, 'widget.png') });
  // The next page load reopens that conversation rather than starting another.
  const first = await page.evaluate(() => window.sotto.widget.threadList().then((l) => l.map((t) => t.id)));
  assert.equal(first.length, 1);
  await page.reload();
  await widget.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await widget.locator('.thread-title', { hasText: 'Support' }).waitFor();
  const again = await page.evaluate(() => window.sotto.widget.threadList().then((l) => l.map((t) => t.id)));
  assert.deepEqual(again, first);
});
