// The tutorial example pages, used as a person would: hello world (an ephemeral visitor),
// a visitor chatting with @support, and Forsta's authenticated-user tutorial with its
// provisioning (a first browser, then importing into a second one from the first, a
// declined import, and a new key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

const connected = (page) => page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });

test('hello world: an anonymous visitor is signed in', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/examples/hello-world/`);
  await connected(page);
  await page.locator('.who', { hasText: 'Hello World' }).waitFor();
  await page.screenshot({ path: join(artifacts, 'example-hello-world.png') });
});

test('a visitor chats with @support and support answers', async () => {
  const bob = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  const visitor = await newPage(env.browser, { width: 800, height: 600 });
  await visitor.goto(`${env.server.base}/examples/ephemeral-user/`);
  // Titled by the group the visitor wrote to, not by its members.
  await visitor.locator('.thread-title', { hasText: 'Support' }).waitFor({ timeout: 15000 });
  // The site's name in the header, and none of what only staff use: key backup, safety
  // numbers, starting threads with people, naming them.
  assert.equal(await visitor.locator('.brand').textContent(), 'Demo Support');
  const actions = visitor.locator('.header-action');
  assert.equal(await actions.count(), 4, 'Key backup, Rename, New topic and Verify are in the page');
  for (const b of await actions.all()) assert.equal(await b.isVisible(), false, await b.textContent());
  assert.equal(await bob.getByRole('button', { name: 'Back up your key with a passphrase' }).isVisible(), true, 'staff keep them');
  await visitor.getByLabel('Message', { exact: true }).fill('Hello, I need help with my order');
  await visitor.getByLabel('Message', { exact: true }).press('Enter');

  await bob.locator('.thread-item', { hasText: 'Vera Visitor' }).click();
  await bob.locator('.msg.in .text', { hasText: 'I need help' }).waitFor();
  // The visitor named itself: staff see it marked as a visitor.
  assert.match(await bob.locator('.msg.in .sender').first().textContent(), /^visitor\.[0-9a-z_]+ \(Vera Visitor\)$/);
  // Staff see whom the thread is with, then the group.
  assert.match(await bob.locator('.thread-title').textContent(), /^visitor\.[0-9a-z_]+ \(Vera Visitor\) · Support$/);
  await bob.screenshot({ path: join(artifacts, 'example-support-staff.png') });
  await bob.getByLabel('Message', { exact: true }).fill('Happy to help, Vera!');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await visitor.locator('.msg.in', { hasText: 'Happy to help' }).waitFor({ timeout: 10000 });
  assert.equal(await visitor.locator('.msg.in .sender').first().textContent(), 'Bob Brown');
  await visitor.screenshot({ path: join(artifacts, 'example-support.png') });
});

test("Forsta's authenticated-user tutorial, with provisioning by import, decline and a new key", async () => {
  const tutorial = `${env.server.base}/examples/authenticated-user/`;
  const open = async () => {
    const page = await newPage(env.browser, { width: 1000, height: 700 });
    page.alerts = [];
    page.on('dialog', (d) => {
      page.alerts.push(d.message());
      d.accept();
    });
    await page.goto(tutorial);
    return page;
  };
  const visible = (page) => page.evaluate(() => getComputedStyle(document.getElementById('my-messenger')).visibility);

  // The first browser: Alice has no key anywhere yet, so it makes one and loads.
  const first = await open();
  await first.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor({ timeout: 15000 });
  assert.equal(await visible(first), 'visible');
  assert.deepEqual(first.alerts, []);
  // Bob has no device yet, so Alice leaves a note in a thread of her own, to see it
  // arrive in her next browser.
  const noteThread = await first.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const c = myClient; // the tutorial's own top-level const
    const id = await c.threadMake('@alice');
    await c.threadSendMessage(id, 'a note to my future browsers');
    return id;
  });
  assert.ok(noteThread);

  // A second browser: provisioning is required; import from the first.
  const second = await open();
  await second.getByRole('dialog', { name: 'Set up this browser' }).waitFor({ timeout: 15000 });
  assert.equal(await visible(second), 'visible', 'onProvisioningRequired showed the messenger');
  await second.getByRole('button', { name: 'Import from a running client' }).click();
  const request = first.getByRole('dialog', { name: 'Link a new browser?' });
  await request.getByRole('button', { name: 'Compare codes' }).waitFor({ timeout: 10000 });
  await first.screenshot({ path: join(artifacts, 'example-forsta-link-request.png') });
  await request.getByRole('button', { name: 'Compare codes' }).click();
  await request.locator('.code').waitFor({ timeout: 10000 });
  const newCode = await second.locator('.dialog .code').textContent({ timeout: 10000 });
  assert.equal(await request.locator('.code').textContent(), newCode, 'both browsers show the same check code');
  await second.screenshot({ path: join(artifacts, 'example-forsta-link-code.png') });
  await first.screenshot({ path: join(artifacts, 'example-forsta-link-approve.png') });
  await second.getByRole('button', { name: 'They match' }).click();
  await request.getByRole('button', { name: 'Approve' }).click();
  await second.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor({ timeout: 15000 });
  assert.deepEqual(second.alerts, ['Provisioning Finished!']);
  // The conversations came along.
  await second.locator('.thread-item', { hasText: 'Just you' }).click();
  await second.locator('.msg .text', { hasText: 'a note to my future browsers' }).waitFor();

  // A third browser: the first declines, then the user makes a new key instead.
  const third = await open();
  await third.getByRole('button', { name: 'Import from a running client' }).click();
  // Both running browsers show the request; when the first declines, the second closes it.
  await second.getByRole('dialog', { name: 'Link a new browser?' }).waitFor({ timeout: 10000 });
  await first.getByRole('dialog', { name: 'Link a new browser?' }).getByRole('button', { name: 'Decline' }).click();
  await third.locator('.dialog', { hasText: 'declined' }).waitFor({ timeout: 10000 });
  await second.getByRole('dialog', { name: 'Link a new browser?' }).waitFor({ state: 'hidden', timeout: 10000 });
  assert.deepEqual(third.alerts, ['Provisioning Failed!']);
  await third.getByRole('button', { name: 'Generate a new key' }).click();
  await third.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor({ timeout: 15000 });
  assert.deepEqual(third.alerts, ['Provisioning Failed!', 'Provisioning Finished!']);
});
