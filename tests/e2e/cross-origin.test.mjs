// A site on its own origin embeds Sotto from the server's origin, as real sites do: the
// script and wasm come cross-origin, every API call (PUT included) passes CORS for the
// configured origin, and two people chat. A site whose origin is not configured is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { launchBrowser, startServer, newPage, artifacts } from './harness.mjs';

function startSite() {
  const server = createServer((req, res) => {
    const { searchParams } = new URL(req.url, 'http://x');
    const api = searchParams.get('server');
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><meta charset="utf-8"><title>A site</title>
<h1>A site that embeds Sotto</h1>
<div id="chat" style="width: 640px; height: 420px"></div>
<script src="${api}/pkg/sotto.global.js"></script>
<script>
  window.client = new sotto.Client(document.getElementById('chat'), { jwt: ${JSON.stringify(searchParams.get('jwt'))} }, {
    url: ${JSON.stringify(api)},
    onLoaded: () => { window.loaded = true; },
  });
  window.errors = [];
  window.client.addEventListener('error', (e) => window.errors.push(e.detail.code));
</script>`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => server.close(),
  })));
}

test('a site on another origin embeds Sotto and two people chat', async (t) => {
  const site = await startSite();
  const stranger = await startSite();
  const server = await startServer({ args: ['--allowed-origin', site.origin] });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop();
    site.close();
    stranger.close();
  });
  const jwt = async (user) => {
    const res = await fetch(`${server.base}/demo/jwt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    return (await res.json()).jwt;
  };
  const open = async (origin, user) => {
    const page = await newPage(browser);
    await page.goto(`${origin}/?server=${encodeURIComponent(server.base)}&jwt=${await jwt(user)}`);
    return page;
  };
  const bob = await open(site.origin, 'bob');
  const alice = await open(site.origin, 'alice');
  for (const p of [alice, bob]) await p.waitForFunction(() => window.loaded, null, { timeout: 20000 });
  await alice.evaluate(async () => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, 'across origins');
  });
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: 'across origins' }).waitFor({ timeout: 15000 });
  await bob.screenshot({ path: join(artifacts, 'cross-origin-bob.png') });

  // A site the server was not configured for gets nowhere.
  const refused = await open(stranger.origin, 'carol');
  await refused.waitForFunction(() => window.errors.length > 0, null, { timeout: 20000 });
  assert.equal(await refused.evaluate(() => window.loaded), undefined);
});
