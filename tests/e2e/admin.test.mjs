// The Forsta flow, end to end: a site's backend creates @newhire through the admin API
// (with a key the operator made with the CLI); Alice's page runs threadMake('@newhire')
// before Nia ever signs in; once Nia signs in and sets up her browser, they talk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, newPage, waitConnected, until, artifacts } from './harness.mjs';

const SECRET = 'the-acme-backends-signing-secret-0123456789';
const serverBinary = process.env.SOTTO_SERVER_BIN || join(process.cwd(), 'target', 'debug', 'sotto-server');

/** An HS256 sign-in token from "the site's backend". */
function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'acme' })}.${b64({ org: 'acme', iat: now, exp: now + 600, ...claims })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

/** A page on the server's origin with a client mounted for `claims`. */
async function mount(browser, base, claims) {
  const page = await newPage(browser, { width: 900, height: 650 });
  await page.goto(`${base}/healthz`);
  await page.setContent('<div id="chat" style="width: 860px; height: 600px"></div>');
  await page.addScriptTag({ url: `${base}/pkg/sotto.global.js` });
  await page.evaluate((token) => {
    window.client = new sotto.Client(document.getElementById('chat'), { jwt: token }, {});
  }, jwt(claims));
  await waitConnected(page);
  return page;
}

/**
 * A server whose configuration has the org acme (HS256 sign-in), a browser, and a backend
 * API key the operator made with the CLI; both are stopped after the test `t`.
 */
async function acme(t) {
  const dir = mkdtempSync(join(tmpdir(), 'sotto-admin-e2e-'));
  const config = join(dir, 'sotto.toml');
  writeFileSync(config, `[[orgs]]\nid = "acme"\nname = "Acme"\n[[orgs.keys]]\nkid = "acme"\nalg = "HS256"\nsecret = "${SECRET}"\n`);
  const db = join(dir, 'sotto.db');
  const server = await startServer({ database: db, args: ['--config', config, '--metrics-listen', 'off'] });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const cli = spawnSync(serverBinary, ['--config', config, '--database', db, 'admin', '--json', 'api-keys', 'create', '--org', 'acme', '--scope', 'backend'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  return { server, browser, key: JSON.parse(cli.stdout).key };
}

test('the backend makes a user the others can write to before they ever sign in', async (t) => {
  // The operator makes the backend's key with the CLI; the backend creates Nia.
  const { server, browser, key } = await acme(t);
  const made = await fetch(`${server.base}/v1/admin/orgs/acme/users/emp-7`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tag: 'newhire', name: 'Nia New', email: 'nia@acme.test' }),
  });
  assert.equal(made.status, 201, await made.clone().text());
  const nia = (await made.json()).user;
  assert.equal(nia.joined, false);

  // Alice finds @newhire at once.
  const alice = await mount(browser, server.base, { user: { id: 'emp-1', name: 'Alice Adams' } });
  t.after(() => { if (t.error) console.log('alice:', alice.log.join('\n')); });
  const threadId = await alice.evaluate(async () => {
    const id = await window.client.threadMake('@newhire');
    await window.client.threadOpen(id);
    return id;
  });
  await alice.locator('.thread-title', { hasText: 'Nia New' }).waitFor();
  // The header says why nothing will reach her yet.
  await alice.locator('.thread-header .members', { hasText: 'Nia New (not joined yet)' }).waitFor();
  await alice.locator('.thread-header .warn', { hasText: 'Nia New has not joined yet' }).waitFor();
  // Nothing can be encrypted to Nia before she has a device: the send says so, and
  // nothing is stored for her.
  const early = await alice.evaluate((id) => window.client.threadSendMessage(id, 'before you joined').then(() => 'sent', (e) => e.code), threadId);
  assert.equal(early, 'no_recipient_devices');
  await alice.screenshot({ path: join(artifacts, 'admin-before-join.png') });

  // Nia's first sign-in (by the ID the backend gave her) is that same user.
  const niaPage = await mount(browser, server.base, { id: 'emp-7' });
  t.after(() => { if (t.error) console.log('nia:', niaPage.log.join('\n')); });

  const hello = 'Welcome aboard, Nia ' + Math.random().toString(36).slice(2);
  await until(alice, (id) => window.client.threadSendMessage(id, 'ping').then(() => true, () => false), threadId, { what: 'a send to Nia' });
  await alice.evaluate(([id, text]) => window.client.threadSendMessage(id, text), [threadId, hello]);
  await niaPage.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 15000 });
  await niaPage.locator('.msg.in .text', { hasText: hello }).waitFor({ timeout: 15000 });
  await niaPage.getByLabel('Message', { exact: true }).fill('Thanks, Alice!');
  await niaPage.getByLabel('Message', { exact: true }).press('Enter');
  await alice.locator('.msg.in .text', { hasText: 'Thanks, Alice!' }).waitFor({ timeout: 15000 });

  const after = await fetch(`${server.base}/v1/admin/orgs/acme/users/emp-7`, { headers: { authorization: `Bearer ${key}` } });
  const joined = await after.json();
  assert.equal(joined.id, nia.id, 'the same user');
  assert.equal(joined.joined, true);
  await alice.evaluate((id) => window.client.threadOpen(id), threadId);
  await alice.locator('.thread-header .members', { hasNotText: 'not joined' }).waitFor();
  await alice.locator('.thread-header .warn').waitFor({ state: 'hidden' });

  // The backend disables Nia: Alice's header says so when she looks again.
  const disabled = await fetch(`${server.base}/v1/admin/orgs/acme/users/emp-7/disable`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  assert.equal(disabled.status, 200);
  await alice.evaluate((id) => window.client.threadOpen(id), threadId);
  await alice.locator('.thread-header .members', { hasText: 'Nia New (account disabled)' }).waitFor();
});

/** Calls the admin API with the backend's key. */
async function admin(base, key, method, path, body) {
  const res = await fetch(`${base}/v1/admin/orgs/acme${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

/** Collects the texts of the messages a page's client hears of. */
async function listen(page) {
  await page.evaluate(() => {
    window.heard = [];
    window.client.addEventListener('thread-message', (e) => window.heard.push(e.detail.text));
  });
}

const heard = (page) => page.evaluate(() => window.heard);

test('a thread made with a group loses whoever the backend takes out of it, and only threads made later gain newcomers', async (t) => {
  const { server, browser, key } = await acme(t);

  const ann = await mount(browser, server.base, { user: { id: 'ann', name: 'Ann Agent' } });
  const dan = await mount(browser, server.base, { user: { id: 'dan', name: 'Dan Desk' } });
  const carol = await mount(browser, server.base, { user: { id: 'carol', name: 'Carol Customer' } });
  const pages = { ann, dan, carol };
  t.after(() => {
    if (t.error) for (const [name, p] of Object.entries(pages)) console.log(`${name}:`, p.log.join('\n'));
  });
  for (const p of [ann, dan]) await listen(p);
  await admin(server.base, key, 'PUT', '/groups/desk', { members: ['ann'] });

  const threadId = await carol.evaluate(async () => {
    const id = await window.client.threadMake('@desk');
    await window.client.threadOpen(id);
    return id;
  });
  const list = await carol.evaluate(() => window.client.threadList());
  assert.equal(list[0].distribution, '@desk + @carol', 'the thread keeps the group');
  assert.equal(list[0].title, 'Desk', 'named by the group Carol wrote to');
  await carol.evaluate((id) => window.client.threadSendMessage(id, 'one: for Ann'), threadId);
  await until(ann, () => window.heard.includes('one: for Ann'), null, { what: 'Ann to hear the first message' });

  // Dan joins the desk: he is in the threads made with it from now on, not in the one under
  // way (the server, which defines groups, must not be able to add a reader to it).
  await admin(server.base, key, 'POST', '/groups/desk/members', { members: ['dan'] });
  // A member's change re-resolves the distribution, which names the desk: still no Dan.
  await carol.evaluate((id) => window.client.threadAmendDistribution(id, '@carol'), threadId);
  const members = (p) => p.evaluate((id) => window.client.threadList().then((l) => l.find((t) => t.id === id).members.map((m) => m.name).sort()), threadId);
  assert.deepEqual(await members(carol), ['Ann Agent', 'Carol Customer']);
  await until(ann, (id) => window.client.threadList().then((l) => l.find((t) => t.id === id).distribution.includes('@carol + @carol')), threadId, { what: "Ann to take Carol's change" });
  assert.deepEqual(await members(ann), ['Ann Agent', 'Carol Customer']);
  await carol.evaluate((id) => window.client.threadSendMessage(id, 'two: still for Ann alone'), threadId);
  await until(ann, () => window.heard.includes('two: still for Ann alone'), null, { what: 'Ann to hear the second message' });
  const second = await carol.evaluate(async () => {
    const id = await window.client.threadMake('@desk');
    await window.client.threadSendMessage(id, 'three: a new topic');
    return id;
  });
  await until(dan, () => window.heard.includes('three: a new topic'), null, { what: 'Dan to hear a message of a thread made after he joined' });
  await until(ann, () => window.heard.includes('three: a new topic'), null, { what: 'Ann to hear the new thread' });
  assert.ok(!(await heard(dan)).includes('two: still for Ann alone'), 'a newcomer is not added to a thread under way');
  const seenByDan = await dan.evaluate((id) => window.client.threadList().then((l) => l.find((t) => t.id === id).title), second);
  assert.equal(seenByDan, 'Carol Customer · Desk', 'an agent sees whom the thread is with');
  // Dan writes in it, and Ann and Carol take it.
  await dan.evaluate((id) => window.client.threadSendMessage(id, 'four: Dan here'), second);
  await until(ann, () => window.heard.includes('four: Dan here'), null, { what: 'Ann to take a message from Dan' });

  // Ann leaves the desk while Carol's browser is closed: Ann is out of both threads at
  // once, Carol's browser catches up when it is back, and what follows never reaches Ann.
  await carol.evaluate(() => window.client.destroy());
  await admin(server.base, key, 'DELETE', '/groups/desk/members/ann');
  for (const id of [threadId, second]) {
    await until(ann, (id) => window.client.threadList().then((l) => l.find((t) => t.id === id)?.left === true), id, { what: "Ann's thread to say she is out" });
  }
  // Carol's browser comes back (the same device and history).
  await carol.evaluate((token) => {
    window.client = new sotto.Client(document.getElementById('chat'), { jwt: token }, {});
  }, jwt({ user: { id: 'carol', name: 'Carol Customer' } }));
  await waitConnected(carol);
  for (const id of [threadId, second]) {
    await until(carol, (id) => window.client.threadList().then((l) => !l.find((t) => t.id === id).members.some((m) => m.name === 'Ann Agent')), id, { what: "Carol's thread to drop Ann once back" });
  }
  await carol.evaluate((id) => window.client.threadSendMessage(id, 'five: not for Ann'), second);
  await until(dan, () => window.heard.includes('five: not for Ann'), null, { what: 'Dan to hear the fifth message' });
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(!(await heard(ann)).includes('five: not for Ann'), 'a removed member reads nothing new');
  await carol.evaluate((id) => window.client.threadOpen(id), second);
  await carol.locator('.msg.in .text', { hasText: 'four: Dan here' }).waitFor({ timeout: 15000 });
  await ann.evaluate((id) => window.client.threadOpen(id), second);
  await ann.locator('.thread-header .members', { hasText: 'no longer a member' }).waitFor();
  await carol.screenshot({ path: join(artifacts, 'group-follow.png') });
});
