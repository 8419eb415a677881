// End to end, the keys of issue #4 in real Chromium pages against the real server:
// linking carries the identity to a second browser and every device of both users gets
// every message; a key backup restores the identity on another browser (a wrong passphrase
// is a clear error); safety numbers agree on every side; a user who makes a new key is
// flagged to the people who talk to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, startServer, newPage, openDemoAs, waitConnected, artifacts, until } from './harness.mjs';

const env = useServerAndBrowser();

/** Opens the demo as a user who already has a key elsewhere: the setup dialog comes up. */
async function openNewBrowserAs(base, user) {
  const page = await newPage(env.browser);
  await page.goto(`${base}/?as=${user}`);
  await page.getByRole('dialog', { name: 'Set up this browser' }).waitFor({ timeout: 15000 });
  return page;
}

const userId = (page, tag) => page.evaluate(async (tag) => {
  const id = await window.client.threadEnsure('@' + tag);
  const t = (await window.client.threadList()).find((t) => t.id === id);
  return t.members.find((m) => m.tag === tag).id;
}, tag);

const safety = (page, id) => page.evaluate((id) => window.client.safetyNumber(id), id);

async function send(page, to, text) {
  await page.evaluate(async ({ to, text }) => {
    const id = await window.client.threadEnsure(to);
    await window.client.threadSendMessage(id, text);
  }, { to, text });
}

const received = (page, text) => until(page, async (text) => {
  for (const t of await window.client.threadList()) {
    if ((await window.client.threadMessages(t.id)).some((m) => m.text === text)) return true;
  }
  return false;
}, text, { what: `"${text}"` });

test('a linked browser gets the identity, and every device of both users gets every message', async (t) => {
  const alice1 = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice1:', alice1.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(alice1, env.server.base, 'alice');
  await openDemoAs(bob, env.server.base, 'bob');
  // Bob knows Alice's first browser before she links a second one.
  await send(bob, '@alice', 'to your first browser');
  await received(alice1, 'to your first browser');
  for (const p of [alice1, bob]) {
    await p.evaluate(() => {
      window.deviceChanges = [];
      window.client.addEventListener('devicechange', (e) => window.deviceChanges.push(e.detail));
    });
  }
  const alice2 = await openNewBrowserAs(env.server.base, 'alice');
  await alice2.getByRole('button', { name: 'Import from a running client' }).click();
  // The running browser asks first; the code appears on both once it has answered.
  const request = alice1.getByRole('dialog', { name: 'Link a new browser?' });
  await request.getByRole('button', { name: 'Compare codes' }).click({ timeout: 10000 });
  await request.locator('.code').waitFor({ timeout: 10000 });
  const code = await alice2.locator('.dialog .code').textContent({ timeout: 10000 });
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.equal(await request.locator('.code').textContent(), code);
  // Approving there is not enough: this browser waits for its own person's word.
  await request.getByRole('button', { name: 'Approve' }).click();
  await alice2.waitForTimeout(2500);
  assert.equal(await alice2.getByRole('button', { name: 'They match' }).count(), 1);
  await alice2.getByRole('button', { name: 'They match' }).click();
  await waitConnected(alice2);

  // One identity on both of Alice's browsers: Bob compares one safety number with her.
  const bobId = await userId(alice1, 'bob');
  const aliceId = await userId(bob, 'alice');
  const [n1, n2, nb] = [await safety(alice1, bobId), await safety(alice2, bobId), await safety(bob, aliceId)];
  assert.match(n1.number, /^(\d{5} ){11}\d{5}$/);
  assert.equal(n1.number, n2.number);
  assert.equal(n1.number, nb.number);
  assert.equal(nb.changed, false);

  // Bob writes once: both of Alice's browsers read it. Alice answers from the second one:
  // Bob reads it, and her first browser shows it as her own.
  // Alice's first browser was told of the new one.
  await alice1.waitForFunction(() => window.deviceChanges.length > 0);
  await send(bob, '@alice', 'to both of your browsers');
  await received(alice1, 'to both of your browsers');
  // Bob saw Alice's new device when he sent, and his thread header says so.
  const bobSaw = await bob.evaluate(() => window.deviceChanges);
  assert.equal(bobSaw.length, 1);
  assert.equal(bobSaw[0].added.length, 1);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  // A quiet note at the end of the thread, until Bob dismisses it.
  const note = bob.locator('.note', { hasText: 'New device for Alice Adams' });
  await note.waitFor();
  await bob.screenshot({ path: join(artifacts, 'keys-new-device.png') });
  await note.getByRole('button', { name: 'Dismiss this note' }).click();
  await note.waitFor({ state: 'detached' });
  await received(alice2, 'to both of your browsers');
  await send(alice2, '@bob', 'answered from the new one');
  await received(bob, 'answered from the new one');
  await received(alice1, 'answered from the new one');
  const own = await alice1.evaluate(async () => {
    for (const t of await window.client.threadList()) {
      const m = (await window.client.threadMessages(t.id)).find((m) => m.text === 'answered from the new one');
      if (m) return m.outgoing;
    }
  });
  assert.equal(own, true);

  // A group of three (sender keys): everyone's devices read it.
  const carol = await newPage(env.browser);
  await openDemoAs(carol, env.server.base, 'carol');
  await send(bob, '@alice + @carol', 'to the group');
  for (const p of [alice1, alice2, carol]) await received(p, 'to the group');
});

test('a relay that swaps the new browser\'s key is caught, and "They differ" stops linking', async (t) => {
  const server = await startServer();
  const alice1 = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice1:', alice1.log.join('\n'));
  });
  await openDemoAs(alice1, server.base, 'alice');
  const alice2 = await newPage(env.browser);
  await alice2.goto(`${server.base}/?as=alice`);
  await alice2.getByRole('dialog', { name: 'Set up this browser' }).waitFor({ timeout: 15000 });
  await alice2.evaluate(() => {
    window.linkCodes = [];
    window.client.addEventListener('linkcode', (e) => window.linkCodes.push(e.detail));
  });
  // The relay (played by rewriting the new browser's request) reveals a key of its own.
  await alice2.route('**/v1/links/*/reveal', (route) => {
    const forged = Buffer.alloc(32, 7).toString('base64');
    route.continue({ postData: JSON.stringify({ ephemeral_public: forged }) });
  });
  await alice2.getByRole('button', { name: 'Import from a running client' }).click();
  await alice1.getByRole('dialog', { name: 'Link a new browser?' }).getByRole('button', { name: 'Compare codes' }).click({ timeout: 10000 });
  await alice1.locator('.notice', { hasText: 'altered on its way' }).waitFor({ timeout: 15000 });
  assert.equal(await alice1.getByRole('dialog', { name: 'Link a new browser?' }).count(), 0, 'no code to approve');
  await alice2.locator('.dialog', { hasText: 'declined' }).waitFor({ timeout: 10000 });
  await alice2.unroute('**/v1/links/*/reveal');

  // An honest try whose person says the codes differ: both sides stop.
  await alice2.getByRole('button', { name: 'Import from a running client' }).click();
  const request = alice1.getByRole('dialog', { name: 'Link a new browser?' });
  await request.getByRole('button', { name: 'Compare codes' }).click({ timeout: 10000 });
  await alice2.getByRole('button', { name: 'They differ' }).click({ timeout: 10000 });
  await alice2.locator('.dialog', { hasText: 'cancelled' }).waitFor({ timeout: 10000 });
  await request.waitFor({ state: 'hidden', timeout: 10000 });
  const codes = await alice2.evaluate(() => window.linkCodes);
  // One code per attempt: the relay's attempt showed one too, which the person would not
  // have found on the running browser.
  assert.equal(codes.length, 2);
  assert.match(codes[1].code, /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  // linkApprove on a finished request is refused.
  const refused = await alice1.evaluate((id) => window.client.linkApprove(id).then(() => null, (e) => e.code), codes[1].id);
  assert.equal(refused, 'unknown_link');
  await server.stop();
});

test('a key backup restores the identity; a new key is flagged to contacts', async (t) => {
  // A server of its own: Alice starts with no key anywhere.
  const server = await startServer();
  const alice1 = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice1:', alice1.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(alice1, server.base, 'alice');
  await openDemoAs(bob, server.base, 'bob');
  await send(bob, '@alice', 'before the backup');
  await received(alice1, 'before the backup');
  const bobId = await userId(alice1, 'bob');
  const aliceId = await userId(bob, 'alice');
  const before = await safety(bob, aliceId);

  // Alice makes a backup from the header, as a person would.
  await alice1.getByRole('button', { name: 'Back up your key with a passphrase' }).click();
  const dialog = alice1.getByRole('dialog', { name: 'Back up your key' });
  await dialog.getByLabel('Passphrase', { exact: true }).fill('short');
  await dialog.getByLabel('Passphrase again').fill('short');
  await dialog.getByRole('button', { name: 'Make backup' }).click();
  await alice1.locator('.dialog', { hasText: 'at least 8 characters' }).waitFor();
  // By keyboard: Enter goes on to the second field, and there makes the backup.
  await dialog.getByLabel('Passphrase', { exact: true }).fill('correct horse battery staple');
  await dialog.getByLabel('Passphrase', { exact: true }).press('Enter');
  await alice1.keyboard.type('correct horse battery staple');
  assert.equal(await dialog.getByLabel('Passphrase again').inputValue(), 'correct horse battery staple');
  await alice1.keyboard.press('Enter');
  const shown = alice1.getByRole('dialog', { name: 'Your key backup' });
  await shown.waitFor({ timeout: 15000 });
  const backup = await shown.getByLabel('Backup').inputValue();
  assert.match(backup, /^sotto-backup:/);
  const header = Buffer.from(backup.slice('sotto-backup:'.length), 'base64');
  assert.deepEqual([...header.subarray(0, 11)], [2, 2, 0, 0, 0x4c, 0, 0, 0, 0, 2, 1],
    'a new backup is version 2: Argon2id, 19 MiB, 2 passes, 1 lane');
  // What the derivation costs a person, in this browser (a figure, never a limit).
  const ms = await alice1.evaluate(async () => {
    const start = performance.now();
    await window.client.keyBackupExport('correct horse battery staple');
    return performance.now() - start;
  });
  t.diagnostic(`keyBackupExport (Argon2id, 19 MiB, t = 2) took ${ms.toFixed(0)} ms in Chromium`);
  await alice1.screenshot({ path: join(artifacts, 'keys-backup-made.png') });
  // Copy puts it on the clipboard, and says so.
  await alice1.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  await shown.getByRole('button', { name: 'Copy' }).click();
  await shown.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await alice1.evaluate(() => navigator.clipboard.readText()), backup);
  await shown.getByRole('button', { name: 'Done' }).click();

  // Another browser restores it: first with a wrong passphrase, then the right one.
  const alice2 = await openNewBrowserAs(server.base, 'alice');
  await alice2.getByRole('button', { name: 'Restore from a backup' }).click();
  const restore = alice2.getByRole('dialog', { name: 'Restore from a backup' });
  await restore.getByLabel('Backup').fill(backup);
  await restore.getByLabel('Passphrase').fill('wrong horse battery staple');
  await restore.getByRole('button', { name: 'Restore' }).click();
  await alice2.locator('.dialog', { hasText: 'passphrase is wrong' }).waitFor({ timeout: 15000 });
  await alice2.screenshot({ path: join(artifacts, 'keys-backup-wrong-passphrase.png') });
  const api = await alice2.evaluate(() =>
    window.client.keyBackupImport('sotto-backup:AAAA', 'whatever').catch((e) => e.code));
  assert.equal(api, 'malformed');
  assert.equal(await restore.getByLabel('Backup').inputValue(), backup, 'the pasted backup stays');
  await restore.getByLabel('Passphrase').fill('correct horse battery staple');
  await restore.getByRole('button', { name: 'Restore' }).click();
  await waitConnected(alice2);
  assert.equal((await safety(alice2, bobId)).number, before.number, 'the same identity');
  await send(bob, '@alice', 'after the restore');
  await received(alice2, 'after the restore');

  // Bob has a second tab open: a view over his first, which must show the same warning.
  const bobView = await bob.context().newPage();
  await bobView.goto(`${server.base}/?as=bob`);
  await bobView.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });

  // A third browser makes a new key instead: Bob is told, and the number changes.
  const alice3 = await openNewBrowserAs(server.base, 'alice');
  // Linking is offered first; a new key, which everyone is told of, last.
  await alice3.getByRole('button', { name: 'Generate a new key' }).waitFor();
  await alice3.screenshot({ path: join(artifacts, 'keys-provisioning-choices.png') });
  await alice3.getByRole('button', { name: 'Generate a new key' }).click();
  await waitConnected(alice3);
  await bob.evaluate(() => {
    window.identityChanges = [];
    window.client.addEventListener('identitychange', (e) => window.identityChanges.push(e.detail.userId));
  });
  await send(bob, '@alice', 'to the new key');
  await received(alice3, 'to the new key');
  assert.deepEqual(await bob.evaluate(() => window.identityChanges), [aliceId]);
  const after = await safety(bob, aliceId);
  assert.notEqual(after.number, before.number);
  assert.equal(after.changed, true);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bob.locator('.note', { hasText: 'security key' }).waitFor();
  await bob.getByRole('button', { name: 'Compare safety numbers with the members' }).click();
  await bob.getByRole('dialog', { name: 'Safety numbers' }).waitFor();
  await bob.screenshot({ path: join(artifacts, 'keys-identity-changed.png') });
  assert.equal(await bob.locator('.dialog', { hasText: after.number }).count(), 1);
  // The number as a grid: its twelve groups of five in four rows of three.
  const grid = bob.locator('.dialog .number');
  assert.equal(await grid.textContent(), after.number);
  assert.equal(await grid.evaluate((e) => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))), 4);

  // The view shows the warning too, and its Verify dialog the same number (asked of the
  // tab that holds the account).
  await bobView.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bobView.locator('.note', { hasText: 'security key' }).waitFor({ timeout: 10000 });
  await bobView.getByRole('button', { name: 'Compare safety numbers with the members' }).click();
  await bobView.getByRole('dialog', { name: 'Safety numbers' }).waitFor();
  await bobView.locator('.dialog', { hasText: after.number }).waitFor({ timeout: 10000 });
  await bobView.screenshot({ path: join(artifacts, 'keys-identity-changed-in-a-view.png') });
  // Dismissed in the view, the note goes in every tab (the holder stores that it was seen).
  await bobView.keyboard.press('Escape');
  await bobView.locator('.note', { hasText: 'security key' }).getByRole('button', { name: 'Dismiss this note' }).click();
  await bob.locator('.note', { hasText: 'security key' }).waitFor({ state: 'detached', timeout: 10000 });
  await bobView.locator('.note', { hasText: 'security key' }).waitFor({ state: 'detached', timeout: 10000 });
  assert.equal((await safety(bob, aliceId)).changed, false);
});

test('a verified contact whose key changes is not written to until verified again', async (t) => {
  const server = await startServer();
  const alice1 = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice1:', alice1.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(alice1, server.base, 'alice');
  await openDemoAs(bob, server.base, 'bob');
  await send(bob, '@alice', 'hello');
  await received(alice1, 'hello');
  const aliceId = await userId(bob, 'alice');

  // Bob compares numbers with Alice and marks her verified, from the Verify dialog.
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bob.getByRole('button', { name: 'Compare safety numbers with the members' }).click();
  const numbers = bob.getByRole('dialog', { name: 'Safety numbers' });
  await numbers.getByRole('button', { name: "Alice Adams's number matches" }).click();
  await until(bob, (id) => window.client.safetyNumber(id).then((n) => n.verified), aliceId, { what: 'verified' });

  // Alice's next browser makes a new key: Bob may not write to her until he verifies it.
  const alice2 = await openNewBrowserAs(server.base, 'alice');
  await alice2.getByRole('button', { name: 'Generate a new key' }).click();
  await waitConnected(alice2);
  const refused = await bob.evaluate(async () => {
    const id = await window.client.threadEnsure('@alice');
    return window.client.threadSendMessage(id, 'to an unverified key').then(() => null, (e) => e.code);
  });
  assert.equal(refused, 'unverified_sender');
  // The warning survives a reload; dismissing it is not enough for a verified contact.
  await bob.reload();
  await waitConnected(bob);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).first().click();
  await bob.locator('.note', { hasText: 'security key' }).waitFor();
  const changed = await safety(bob, aliceId);
  assert.deepEqual([changed.changed, changed.verified], [true, false]);
  await bob.evaluate((id) => window.client.acknowledgeIdentityChange(id), aliceId);
  await bob.locator('.note', { hasText: 'security key' }).waitFor({ state: 'detached' });
  const still = await bob.evaluate(async () => {
    const id = await window.client.threadEnsure('@alice');
    return window.client.threadSendMessage(id, 'still not').then(() => null, (e) => e.code);
  });
  assert.equal(still, 'unverified_sender');
  // Verifying the new number lets Bob write again.
  await bob.getByRole('button', { name: 'Compare safety numbers with the members' }).click();
  await bob.getByRole('dialog', { name: 'Safety numbers' }).getByRole('button', { name: "Alice Adams's number matches" }).click();
  await until(bob, (id) => window.client.safetyNumber(id).then((n) => n.verified), aliceId, { what: 'verified' });
  await send(bob, '@alice', 'to the verified new key');
  await received(alice2, 'to the verified new key');
  assert.equal(await bob.evaluate(() => window.client.markVerified('nobody', '1').catch((e) => e.code)), 'no_identity');
  // A number that is not the current one (say, compared before a key change) verifies nothing.
  const stale = await bob.evaluate((id) => window.client.markVerified(id, '00000 11111').catch((e) => e.code), aliceId);
  assert.equal(stale, 'safety_number_changed');
});
