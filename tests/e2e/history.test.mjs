// History survives a reload (IndexedDB), and a message typed offline is sent once when the
// connection returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

test('history is on screen again after a reload', async () => {
  const bob = await newPage(env.browser);
  const alice = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  await alice.getByLabel('New thread: who to talk to').fill('@bob');
  await alice.getByRole('button', { name: 'Start' }).click();
  await alice.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();
  await send(alice, 'remember me');
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'remember me' }).waitFor();
  await send(bob, 'I will');
  await alice.locator('.msg.in .text', { hasText: 'I will' }).waitFor();

  await bob.reload();
  const item = bob.locator('.thread-item', { hasText: 'Alice Adams' });
  await item.waitFor({ timeout: 10000 });
  assert.match(await item.textContent(), /I will/);
  await item.click();
  assert.deepEqual(await bob.locator('.msg .text').allTextContents(), ['remember me', 'I will']);
  // Still one conversation after the reload: nothing was delivered twice.
  await bob.locator('.status[data-connected="true"]').waitFor();
  await send(alice, 'after your reload');
  await bob.locator('.msg.in .text', { hasText: 'after your reload' }).waitFor();
  assert.equal(await bob.locator('.msg').count(), 3);
  await bob.screenshot({ path: join(artifacts, 'history-after-reload.png') });
});

test('a message typed offline is sent once when the connection returns', async () => {
  const bob = await newPage(env.browser);
  const alice = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  const threadId = await alice.evaluate(() => window.client.threadMake('@bob'));
  await alice.evaluate((id) => window.client.threadOpen(id), threadId);

  await alice.context().setOffline(true);
  await send(alice, 'typed on the train');
  const pending = alice.locator('.msg.out[data-status="pending"]', { hasText: 'typed on the train' });
  await pending.waitFor();
  await alice.screenshot({ path: join(artifacts, 'offline-pending.png') });

  await alice.context().setOffline(false);
  await pending.waitFor({ state: 'detached', timeout: 20000 });
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bob.locator('.msg.in .text', { hasText: 'typed on the train' }).waitFor({ timeout: 10000 });
  await bob.waitForTimeout(1000);
  assert.equal(await bob.locator('.msg.in .text', { hasText: 'typed on the train' }).count(), 1, 'sent once');
  assert.equal(await alice.locator('.msg.out .text', { hasText: 'typed on the train' }).count(), 1);
});

test('saved history stays readable when the server cannot be reached', async () => {
  const bob = await newPage(env.browser);
  const alice = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  const threadId = await bob.evaluate(() => window.client.threadMake('@alice'));
  await bob.evaluate((id) => window.client.threadSendMessage(id, 'read me on the plane'), threadId);
  // Once the message is on screen it is saved (the client stores before it shows and acks).
  await alice.locator('.thread-item', { hasText: 'read me on the plane' }).waitFor();

  // The API is unreachable (the page itself still loads): the saved history shows.
  await alice.route('**/v1/**', (route) => route.abort('internetdisconnected'));
  await alice.reload();
  await alice.locator('.status', { hasText: 'Offline' }).waitFor({ timeout: 10000 });
  await alice.locator('.who', { hasText: 'Alice Adams' }).waitFor();
  await alice.locator('.thread-item', { hasText: 'read me on the plane' }).click();
  await alice.locator('.msg.in .text', { hasText: 'read me on the plane' }).waitFor();
  assert.equal(await alice.getByLabel('Message', { exact: true }).isDisabled(), true, 'read-only while offline');
  await alice.screenshot({ path: join(artifacts, 'offline-history.png') });

  // When the server is back, the client signs in by itself.
  await alice.unroute('**/v1/**');
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 40000 });
  assert.equal(await alice.getByLabel('Message', { exact: true }).isDisabled(), false);
});
