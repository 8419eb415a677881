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

test('the backend makes a user the others can write to before they ever sign in', async (t) => {
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

  // The operator makes the backend's key with the CLI; the backend creates Nia.
  const cli = spawnSync(serverBinary, ['--config', config, '--database', db, 'admin', '--json', 'api-keys', 'create', '--org', 'acme', '--scope', 'backend'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const { key } = JSON.parse(cli.stdout);
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
});
