// The Vite example app: the package installed from the repository's pkg/ and bundled by
// Vite works in the browser (scripts/test.sh builds it into examples/vite-app/dist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, root, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('the Vite-bundled app signs in and opens its thread', async () => {
  assert.ok(existsSync(join(root, 'examples/vite-app/dist/index.html')), 'build the app first (scripts/test.sh does)');
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/examples/vite-app/dist/index.html`);
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await page.locator('.thread-title', { hasText: 'Vite app (sotto 0.1.0)' }).waitFor();
  // The wasm came from the bundle's own assets, not from /pkg.
  const wasm = await page.evaluate(() => performance.getEntriesByType('resource').map((r) => r.name).filter((n) => n.endsWith('.wasm')));
  assert.equal(wasm.length, 1);
  assert.match(wasm[0], /\/examples\/vite-app\/dist\/assets\//);
  await page.screenshot({ path: join(artifacts, 'example-vite.png') });
});
