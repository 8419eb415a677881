// The React example: Sotto without its UI (`ui: false`), installed from the repository's
// pkg/ and bundled by Vite, in React's StrictMode (which mounts the hook twice). The page
// draws the conversation from the API and events alone, and talks to Bob's Sotto UI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, root, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('a headless client in a React app sends and receives, drawn by React', async (t) => {
  assert.ok(existsSync(join(root, 'examples/react-app/dist/index.html')), 'build the app first (scripts/test.sh does)');
  const bob = await newPage(env.browser);
  const app = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('app:', app.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  await app.goto(`${env.server.base}/examples/react-app/dist/index.html?user=alice`);
  await app.locator('.status[data-connected="true"]').waitFor({ timeout: 20000 });
  await app.getByRole('button', { name: 'Talk to Bob' }).click();
  await app.getByRole('heading', { name: 'React app' }).waitFor();

  const hello = 'Hello from React ' + Math.random().toString(36).slice(2);
  await app.getByLabel('Message').fill(hello);
  await app.getByRole('button', { name: 'Send' }).click();
  await app.locator('.messages li.out', { hasText: hello }).waitFor();
  await bob.locator('.thread-item', { hasText: 'React app' }).click();
  await bob.locator('.msg.in .text', { hasText: hello }).waitFor({ timeout: 10000 });
  await bob.getByLabel('Message', { exact: true }).fill('Hi React');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await app.locator('.messages li.in', { hasText: 'Hi React' }).waitFor({ timeout: 10000 });
  // The thread is on screen, so Bob's answer is read at once: no unread badge, and Bob
  // sees his message read.
  await bob.locator('.msg.out .state', { hasText: 'Read' }).waitFor({ timeout: 10000 });
  assert.equal(await app.locator('.unread').count(), 0);

  // Nothing of Sotto's own UI is in the page: React drew all of it.
  const shadows = await app.evaluate(() => [...document.querySelectorAll('*')].filter((e) => e.shadowRoot).length);
  assert.equal(shadows, 0);
  await app.screenshot({ path: join(artifacts, 'example-react.png') });
});

test('ui: false has no UI to toggle, and <sotto-chat> mounts Sotto from plain HTML', async (t) => {
  const page = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log(page.log.join('\n'));
  });
  await page.goto(`${env.server.base}/?as=carol`);
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 20000 });
  const code = await page.evaluate(async () => {
    const c = new window.sotto.Client(document.createElement('div'), null, { ui: false });
    const e = await c.navPanelToggle().catch((err) => err.code);
    c.destroy();
    return e;
  });
  assert.equal(code, 'no_ui');

  // The custom element (examples/custom-element): its token set by script, a thread to
  // open; removing it ends its client.
  const element = await newPage(env.browser, { width: 420, height: 600 });
  t.after(() => {
    if (t.error) console.log(element.log.join('\n'));
  });
  await element.goto(`${env.server.base}/examples/custom-element/index.html?user=alice`);
  const chat = element.locator('sotto-chat');
  const generate = element.getByRole('button', { name: 'Generate a new key' });
  await chat.locator('.status[data-connected="true"]').or(generate).first().waitFor({ timeout: 20000 });
  if (await generate.isVisible()) await generate.click();
  await chat.locator('.thread-title', { hasText: 'Carol' }).waitFor({ timeout: 15000 });
  await chat.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await element.screenshot({ path: join(artifacts, 'sotto-chat-element.png') });
  const after = await element.evaluate(async () => {
    const el = document.querySelector('sotto-chat');
    const client = el.client;
    const kept = client instanceof window.sotto.Client;
    el.remove();
    await new Promise((r) => setTimeout(r, 0));
    return [kept, el.client, await client.threadList().then(() => 'still running', (e) => e.code)];
  });
  assert.deepEqual(after, [true, null, 'destroyed']);
  // A token given as an attribute does not stay in the page's markup.
  const kept = await element.evaluate(() => {
    const el = document.createElement('sotto-chat');
    el.setAttribute('jwt', 'header.payload.signature');
    return el.hasAttribute('jwt');
  });
  assert.equal(kept, false);
});
