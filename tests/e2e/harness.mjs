// Shared by the end-to-end tests: the real sotto-server binary on a loopback port with its
// own SQLite file, and headless Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifacts = join(root, 'tests', 'artifacts');
mkdirSync(artifacts, { recursive: true });

const serverBinary = process.env.SOTTO_SERVER_BIN || join(root, 'target', 'debug', 'sotto-server');

const started = new Set();

/**
 * For a test file: a demo server and a browser before its tests, both gone after them
 * (with any server a test started itself). The returned object's `server` and `browser`
 * are set once the file's tests run.
 */
export function useServerAndBrowser() {
  const env = {};
  before(async () => {
    env.server = await startServer();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    for (const s of started) await s.stop();
  });
  return env;
}

/**
 * Starts `sotto-server --demo` serving this repository; resolves once it listens. `env`
 * adds to its environment (e.g. a demo secret that several nodes share).
 */
export async function startServer({ database, listen = '127.0.0.1:0', args = [], env = {} } = {}) {
  const db = database || join(mkdtempSync(join(tmpdir(), 'sotto-e2e-')), 'sotto.db');
  const child = spawn(serverBinary, ['--demo', '--listen', listen, '--database', db, '--static-dir', root, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SOTTO_LOG: process.env.SOTTO_LOG || 'warn', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('sotto-server did not start: ' + stderr)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`sotto-server exited with ${code}: ${stderr}`)));
  });
  const server = {
    base,
    db,
    port: new URL(base).port,
    /** Kills the process outright (`kill -9`): no draining, nothing flushed. */
    async kill() {
      started.delete(server);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      started.delete(server);
      // Already gone (exited, or killed by a signal): there is no exit left to wait for.
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  started.add(server);
  return server;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    ],
  });
}

/** A fresh browser profile (its own IndexedDB) with a page, logging its console on failure. */
export async function newPage(browser, viewport = { width: 1000, height: 700 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.log = log;
  return page;
}

/** Waits until the client is connected, making a new key if the browser asks how to set up. */
export async function waitConnected(page) {
  const connected = page.locator('.status[data-connected="true"]');
  const generate = page.getByRole('button', { name: 'Generate a new key' });
  await connected.or(generate).first().waitFor({ timeout: 15000 });
  if (await generate.isVisible()) await generate.click();
  await connected.waitFor({ timeout: 15000 });
}

/** Opens the demo page signed in as `user` and waits until the client is connected. */
export async function openDemoAs(page, base, user) {
  await page.goto(`${base}/?as=${user}`);
  await waitConnected(page);
}

/**
 * Alice and Bob, each in a fresh browser profile on the demo page, connected; both pages'
 * consoles are printed if test `t` fails.
 */
export async function aliceAndBob(t, env) {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  await openDemoAs(bob, env.server.base, 'bob');
  return { alice, bob };
}

/**
 * Waits until `fn` (run in `page`, may be async) returns something truthy. Playwright's
 * waitForFunction does not await a predicate's Promise — a Promise is truthy, so it would
 * return at once — hence this poll from Node for the client's async API.
 */
export async function until(page, fn, arg, { timeout = 15000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Everything the server's SQLite database holds on disk (with its WAL), as text, for
 * tests that check it never holds a plaintext. */
export function databaseText(db) {
  return ['', '-wal', '-shm']
    .map((suffix) => db + suffix)
    .filter(existsSync)
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
}
