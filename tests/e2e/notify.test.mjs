// Notifications and the unread count in the title, as a page that turns them on sees them:
// a message arriving while the page is hidden raises one system notification (with the
// site's permission only), none while it is shown, and the title counts what is unread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, newPage, openDemoAs, until, waitConnected } from './harness.mjs';

const env = useServerAndBrowser();

/** examples/notifications as `user`, with `query` added to its address. */
async function sitePage(user, query = '') {
  const page = await newPage(env.browser);
  // The page can be hidden and shown (headless Chromium always reports it visible), and
  // every notification it raises is recorded.
  await page.addInitScript(() => {
    window.__hidden = false;
    Object.defineProperty(Document.prototype, 'hidden', { get: () => window.__hidden });
    Object.defineProperty(Document.prototype, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible') });
    window.setHidden = (hidden) => {
      window.__hidden = hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    };
    window.shown = [];
    window.closedTags = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, options) {
        window.shown.push({ title, body: options.body, tag: options.tag, silent: options.silent });
        super(title, options);
      }
      close() {
        window.closedTags.push(this.tag);
        super.close();
      }
    };
  });
  await page.goto(`${env.server.base}/examples/notifications/index.html?user=${user}${query}`);
  await waitConnected(page);
  return page;
}

test('a hidden page notifies of a message, once, and the title counts the unread', async (t) => {
  const bob = await sitePage('bob');
  await bob.context().grantPermissions(['notifications'], { origin: env.server.base });
  const alice = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('bob:', bob.log.join('\n'), '\nalice:', alice.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  const thread = await alice.evaluate(() => window.client.threadMake('@bob'));

  // Shown: no notification, but the title counts it (no thread is open).
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'while you look'), thread);
  await until(bob, () => document.title === '(1) Support desk', null, { what: 'the title count' });
  assert.deepEqual(await bob.evaluate(() => window.shown), []);

  // Hidden: one notification with the sender and the text.
  await bob.evaluate(() => window.setHidden(true));
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'are you there?'), thread);
  await until(bob, () => window.shown.length === 1, null, { what: 'a notification' });
  const [n] = await bob.evaluate(() => window.shown);
  assert.equal(n.title, 'Alice Adams');
  assert.equal(n.body, 'are you there?');
  assert.equal(n.silent, true);
  assert.match(n.tag, /^sotto-/);
  await until(bob, () => document.title === '(2) Support desk', null, { what: 'two unread in the title' });

  // Read: the count leaves the title, and the notification the screen.
  assert.deepEqual(await bob.evaluate(() => window.closedTags), []);
  await bob.evaluate((id) => window.client.markRead(id), thread);
  await until(bob, () => document.title === 'Support desk', null, { what: 'the title without a count' });
  await until(bob, (tag) => window.closedTags.includes(tag), n.tag, { what: 'the notification closed once read' });

  // A message its sender deletes takes its notification with it.
  const sent = await alice.evaluate((id) => window.client.threadSendMessage(id, 'sent by mistake'), thread);
  await until(bob, () => window.shown.length === 2, null, { what: 'a second notification' });
  await alice.evaluate(([id, m]) => window.client.threadMessageDelete(id, m), [thread, sent]);
  await until(bob, (m) => window.closedTags.includes(`sotto-${m}`), sent, { what: 'the notification closed on deletion' });
});

test('no preview when asked, and nothing without the permission', async (t) => {
  const carol = await sitePage('carol', '&preview=false');
  await carol.context().grantPermissions(['notifications'], { origin: env.server.base });
  const dan = await sitePage('bob');
  const alice = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('carol:', carol.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  for (const page of [carol, dan]) await page.evaluate(() => window.setHidden(true));
  const thread = await alice.evaluate(() => window.client.threadMake('@carol + @bob'));
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'the launch code is 1234'), thread);
  await until(carol, () => window.shown.length === 1, null, { what: 'a notification without preview' });
  assert.equal(await carol.evaluate(() => window.shown[0].body), 'New message');
  await until(dan, () => window.client.threadList().then((ts) => ts.length === 1), null, { what: 'the message at Bob' });
  assert.deepEqual(await dan.evaluate(() => window.shown), [], 'no permission, no notification');
});
