// The identity-token lifecycle of examples/identity-token, driven like a person would:
// expiry, a new token within the grace window (same session, no reload, nothing lost),
// expiry past the window, and clearSession across two tabs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

const example = (params) => `${env.server.base}/examples/identity-token/?${params}`;
const waitForEvent = (page, name, timeout = 20000) =>
  page.waitForFunction((n) => window.events.includes(n), name, { timeout });

test('a new token within the grace window continues the session and loses nothing', async () => {
  const bob = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  const alice = await newPage(env.browser);
  await alice.goto(example('user=alice&ttl=6&grace=20000'));
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  assert.deepEqual(await alice.evaluate(() => window.events), ['ready', 'loaded']);
  await alice.evaluate(() => (window.marker = 'same page'));

  const threadId = await alice.evaluate(() => window.client.threadMake('@bob'));
  await alice.evaluate((id) => window.client.threadOpen(id), threadId);
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'before expiry'), threadId);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'before expiry' }).waitFor();

  await waitForEvent(alice, 'identitytokenexpired');
  await alice.locator('.status', { hasText: 'Session expired' }).waitFor();
  // Bob writes while Alice's session is expired: the message must wait for her.
  await bob.getByLabel('Message', { exact: true }).fill('sent during the grace window');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await bob.locator('.msg.out .text', { hasText: 'sent during the grace window' }).waitFor();

  await alice.getByRole('button', { name: 'Give a new identity token' }).click();
  await alice.locator('.msg.in .text', { hasText: 'sent during the grace window' }).waitFor({ timeout: 10000 });
  assert.equal(await alice.evaluate(() => window.marker), 'same page', 'no reload');
  const events = await alice.evaluate(() => window.events);
  assert.ok(!events.includes('sessioncleared'), `the session was cleared: ${events}`);
  const texts = await alice.locator('.msg .text').allTextContents();
  assert.deepEqual(texts, ['before expiry', 'sent during the grace window'], 'history kept');
  await alice.screenshot({ path: join(artifacts, 'identity-refreshed.png') });
});

test('without a new token the session is cleared when the window closes', async () => {
  const alice = await newPage(env.browser);
  await alice.goto(example('user=alice&ttl=5&grace=1500'));
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await alice.evaluate(() => window.client.threadMake('@bob'));
  await alice.locator('.thread-item').first().waitFor();
  await waitForEvent(alice, 'sessioncleared');
  const events = await alice.evaluate(() => window.events);
  assert.deepEqual(events, ['ready', 'loaded', 'identitytokenexpired', 'sessioncleared', 'ready']);
  assert.equal(await alice.locator('.thread-item').count(), 0, 'nothing of the session is left on screen');
  await alice.locator('.status', { hasText: 'Signed out' }).waitFor();
  const err = await alice.evaluate(() => window.client.threadList().catch((e) => e.code));
  assert.equal(err, 'not_signed_in');
  // A later token signs in again.
  await alice.getByRole('button', { name: 'Give a new identity token' }).click();
  await alice.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
});

test('clearSession signs out every tab and leaves no key behind', async () => {
  const context = await env.browser.newContext();
  const tab1 = await context.newPage();
  const tab2 = await context.newPage();
  await tab1.goto(example('user=carol&ttl=300'));
  await tab1.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  // The second tab of the same person waits while the first holds the account.
  await tab2.goto(example('user=carol&ttl=300'));
  await tab2.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });
  const storedKeys = (tab) =>
    tab.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const open = indexedDB.open('sotto');
          open.onsuccess = () => {
            const tx = open.result.transaction(['devices', 'threads', 'identities']);
            const counts = ['devices', 'threads', 'identities'].map((s) => tx.objectStore(s).count());
            tx.oncomplete = () => resolve(counts.map((c) => c.result));
            const req = counts[0];
            req.onerror = () => reject(req.error);
          };
        }),
    );
  assert.deepEqual(await storedKeys(tab1), [1, 0, 1]);
  await tab1.getByRole('button', { name: 'Log out (clearSession)' }).click();
  await waitForEvent(tab2, 'sessioncleared', 10000);
  await waitForEvent(tab1, 'sessioncleared', 10000);
  assert.deepEqual(await storedKeys(tab2), [0, 0, 0], 'nothing of the user is left in this browser');
  await tab2.locator('.status', { hasText: 'Signed out' }).waitFor();
  await tab2.screenshot({ path: join(artifacts, 'identity-cleared-tab2.png') });
  await context.close();
});

test('a token provider is asked at start and again before the session ends', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/`);
  await page.evaluate(() => {
    window.calls = [];
    window.events = [];
    const el = document.getElementById('messenger');
    const client = new sotto.Client(el, {
      tokenProvider: async () => {
        window.calls.push(Date.now());
        const res = await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', ttl: 5 }) });
        return (await res.json()).jwt;
      },
    }, { provisioning: 'generate' });
    for (const n of ['loaded', 'identitytokenexpired', 'sessioncleared']) client.addEventListener(n, () => window.events.push(n));
    window.client = client;
  });
  await page.waitForFunction(() => window.calls.length >= 3, null, { timeout: 15000 });
  const events = await page.evaluate(() => window.events);
  assert.deepEqual(events, ['loaded'], 'refreshed before expiry, so the session never lapsed');
  await page.locator('.status[data-connected="true"]').waitFor();
});

test('a failing token provider is retried with backoff, not in a tight loop', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/`);
  await page.evaluate(() => {
    window.calls = 0;
    window.codes = [];
    const client = new sotto.Client(document.getElementById('messenger'), {
      tokenProvider: async () => {
        window.calls += 1;
        throw new Error('the site is down');
      },
    });
    client.addEventListener('error', (e) => window.codes.push(e.detail.code));
  });
  await page.waitForTimeout(4000);
  const { calls, codes } = await page.evaluate(() => ({ calls: window.calls, codes: window.codes }));
  // 1 s doubling with 50-100 % jitter: at most attempts at 0, ≤1, ≤3 s within 4 s, at least 2.
  assert.ok(calls >= 2 && calls <= 4, `provider called ${calls} times in 4 s`);
  assert.ok(codes.every((c) => c === 'token_provider_failed') && codes.length === calls, JSON.stringify(codes));
});
