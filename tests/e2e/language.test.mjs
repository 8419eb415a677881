// End to end: the UI in another language, between real browsers through the real server.
// With `locale: 'de'` every word Sotto draws is German — the frame, states, typing, notes,
// dialogs, a field's own error — dates and times are written the German way, and what
// people wrote (a message that reads "Send") stays as they wrote it, while the English
// member beside sees English. A right-to-left locale lays the UI out mirrored, with the
// site's own `strings`. Bad language options are refused with a code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, until, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

/** Waits until the client on `page` is connected, in any language. */
async function connected(page) {
  await page.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
}

/**
 * The English UI texts still shown in `page`'s Sotto (outside what people wrote): texts
 * and labels that are a key of the German table, or fit one with `{}`, and whose German
 * differs.
 */
const untranslated = (page) =>
  page.evaluate(async () => {
    const de = await (await fetch('/pkg/locales/de.json')).json();
    const exact = new Set(Object.keys(de).filter((k) => !k.includes('{}') && de[k] !== k));
    const patterns = Object.keys(de)
      .filter((k) => k.includes('{}'))
      .map((k) => new RegExp(`^${k.split('{}').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`, 's'));
    const english = (s) => exact.has(s) || patterns.some((p) => p.test(s));
    const root = document.querySelector('#messenger').shadowRoot;
    const people = '.sender, .who, .brand, .msg:not(.gone) > .text, .attachment, .reaction, .code, style';
    const left = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.parentElement.closest(people) && english(n.data)) left.push(n.data);
    }
    for (const el of root.querySelectorAll('[aria-label], [placeholder]')) {
      for (const name of ['aria-label', 'placeholder']) {
        const v = el.getAttribute(name);
        if (v !== null && english(v)) left.push(`${name}=${v}`);
      }
    }
    return left;
  });

test('in German every word of the UI is German, dates too, and what people wrote is not touched', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await alice.goto(`${env.server.base}/?as=alice&locale=de`);
  await connected(alice);
  await openDemoAs(bob, env.server.base, 'bob');

  const host = await alice.evaluate(() => {
    const el = document.querySelector('#messenger');
    return { lang: el.getAttribute('lang'), dir: el.getAttribute('dir') };
  });
  assert.deepEqual(host, { lang: 'de', dir: 'ltr' });
  assert.equal(await alice.locator('.status').textContent(), 'Verbunden');
  const backup = alice.getByRole('button', { name: 'Schlüssel mit einer Passphrase sichern' });
  assert.equal(await backup.textContent(), 'Schlüssel sichern');
  assert.equal(await alice.locator('.composer textarea').getAttribute('placeholder'), 'Nachricht schreiben');
  assert.equal(await alice.locator('.thread-title').textContent(), 'Keine Unterhaltung geöffnet');

  // Bob writes words that are also words of the UI: Alice reads them as written.
  const id = await bob.evaluate(() => window.client.threadStartWithExpression('@alice'));
  await bob.evaluate((id) => window.client.threadOpen(id), id);
  for (const text of ['Send', 'Reply', 'Cancel']) {
    await bob.getByLabel('Message', { exact: true }).fill(text);
    await bob.getByLabel('Message', { exact: true }).press('Enter');
  }
  await alice.locator(`[data-thread="${id}"]`).click();
  await alice.locator('.msg.in').nth(2).waitFor();
  assert.deepEqual(await alice.locator('.msg.in .text').allTextContents(), ['Send', 'Reply', 'Cancel']);
  assert.equal(await alice.locator('.msg.in .sender:visible').first().textContent(), 'Bob Brown');
  assert.equal(await alice.locator('.thread-title').textContent(), 'Bob Brown', 'a title is a name, not translated');

  // Alice answers: her state reads German once Bob, who has the thread open, reads it.
  await alice.getByLabel('Nachricht', { exact: true }).fill('Alles klar');
  await alice.getByLabel('Nachricht', { exact: true }).press('Enter');
  await alice.locator('.msg.out .state', { hasText: 'Gelesen' }).waitFor({ timeout: 10000 });

  // Dates and times the German way (24 hours, German day names), from the browser's Intl.
  const want = await alice.evaluate(() => ({
    day: new Date().toLocaleString('de', { weekday: 'long', month: 'long', day: 'numeric' }),
  }));
  assert.equal(await alice.locator('.day').first().textContent(), want.day);
  for (const time of await alice.locator('.msg time').allTextContents()) assert.match(time, /^\d\d:\d\d$/);

  // Bob types: Alice reads it in German, with his name as it is.
  await bob.getByLabel('Message', { exact: true }).fill('Moment');
  await alice.locator('.typing', { hasText: 'Bob Brown schreibt…' }).waitFor({ timeout: 10000 });
  assert.deepEqual(await untranslated(alice), [], 'the thread, with a message, a state and typing');
  await alice.screenshot({ path: join(artifacts, 'language-german-desktop.png') });

  // A dialog: deleting her message, in German; Bob (in English) reads English.
  const mine = alice.locator('.msg.out').filter({ has: alice.locator('.text', { hasText: 'Alles klar' }) });
  await mine.hover();
  await mine.locator('.tools').getByRole('button', { name: 'Löschen', exact: true }).click();
  await alice.locator('.dialog-title', { hasText: 'Diese Nachricht löschen?' }).waitFor();
  assert.deepEqual(await untranslated(alice), [], 'the delete dialog');
  await alice.getByRole('button', { name: 'Für alle löschen' }).click();
  await alice.locator('.msg.out.gone .text', { hasText: 'Nachricht gelöscht' }).waitFor();
  await bob.locator('.msg.in.gone .text', { hasText: 'Message deleted' }).waitFor({ timeout: 10000 });

  // The key backup dialog, and a field's own error (the browser's bubble, not the page).
  await backup.click();
  await alice.getByLabel('Passphrase wiederholen').waitFor();
  assert.deepEqual(await untranslated(alice), [], 'the backup dialog');
  await alice.keyboard.press('Escape');
  await alice.locator('.overlay').waitFor({ state: 'hidden' });
  const field = alice.getByLabel('Neue Unterhaltung: mit wem?');
  await field.fill('@nobody');
  await field.press('Enter');
  await until(alice, () => document.querySelector('#messenger').shadowRoot.querySelector('.new-thread input').validationMessage !== '', null, { what: 'the field\'s error' });
  assert.equal(await field.evaluate((i) => i.validationMessage), 'Niemand heißt @nobody');
  assert.equal(await field.inputValue(), '@nobody', 'what was typed is kept');
  // Not the parser's words: how to write it, in German.
  await field.fill('@alice, @bob');
  await field.press('Enter');
  await until(alice, () => document.querySelector('#messenger').shadowRoot.querySelector('.new-thread input').validationMessage.startsWith('Schreiben'), null, { what: 'how to write it' });
  assert.equal(await field.evaluate((i) => i.validationMessage), 'Schreiben Sie, mit wem: @name, verbunden mit + (und - um jemanden auszulassen).');

  // At a phone's width, dark.
  await alice.setViewportSize({ width: 320, height: 640 });
  await alice.evaluate(() => document.querySelector('#messenger').setAttribute('data-sotto-theme', 'dark'));
  await alice.screenshot({ path: join(artifacts, 'language-german-320-dark.png') });
});

test('a right-to-left language mirrors the UI, with the site\'s own words', async (t) => {
  const carol = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('carol:', carol.log.join('\n'));
  });
  await carol.goto(`${env.server.base}/`);
  await carol.evaluate(async () => {
    const res = await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"carol"}' });
    const { jwt } = await res.json();
    window.client = new window.sotto.Client(document.getElementById('messenger'), { jwt }, {
      locale: 'he',
      strings: { Send: 'שליחה', 'Write a message': 'כתבו הודעה', Connected: 'מחובר', '{} is typing…': '{} מקליד/ה…' },
    });
  });
  await connected(carol);
  assert.equal(await carol.locator('.status').textContent(), 'מחובר');
  assert.equal(await carol.locator('.composer textarea').getAttribute('placeholder'), 'כתבו הודעה');
  assert.equal(await carol.locator('.thread-title').textContent(), 'No thread open', 'English where the site gave no word');
  assert.equal(await carol.locator('#messenger').getAttribute('dir'), 'rtl');

  const id = await carol.evaluate(() => window.client.threadStartWithExpression('@alice'));
  await carol.evaluate((id) => window.client.threadOpen(id), id);
  await carol.getByLabel('Message', { exact: true }).fill('שלום Alice');
  await carol.getByRole('button', { name: 'שליחה' }).click();
  await carol.locator('.msg.out').first().waitFor();
  // A message in a left-to-right language reads left to right in the mirrored UI.
  await carol.getByLabel('Message', { exact: true }).fill('Hello, this line is English (and ends here).');
  await carol.getByLabel('Message', { exact: true }).press('Enter');
  await carol.locator('.msg.out').nth(1).waitFor();

  // Mirrored: the thread list on the right, the send button left of the field, and one's
  // own messages on the left.
  const box = (selector) => carol.locator(selector).first().boundingBox();
  const [nav, thread, field, send, bubble, list] = await Promise.all(
    ['.nav', '.thread', '.composer textarea', '.composer button[type=submit]', '.msg.out', '.messages'].map(box),
  );
  assert.ok(nav.x > thread.x, 'the thread list is on the right');
  assert.ok(send.x < field.x, 'the send button is on the left of the field');
  assert.ok(bubble.x + bubble.width / 2 < list.x + list.width / 2, 'one\'s own message is on the left');
  await carol.screenshot({ path: join(artifacts, 'language-rtl-desktop.png') });
});

test('bad language options are refused with a code, and a page without Sotto\'s UI is left alone', async () => {
  const page = await newPage(env.browser);
  await page.goto(`${env.server.base}/`);
  const refused = await page.evaluate(() => {
    const el = document.createElement('div');
    document.body.append(el);
    const codes = [];
    for (const options of [{ locale: 'not a language!' }, { locale: 42 }, { strings: { Send: 5 } }, { strings: 'de' }]) {
      try {
        new window.sotto.Client(el, {}, options);
        codes.push('accepted');
      } catch (err) {
        codes.push(err.code);
      }
    }
    // Headless: no shadow root, no lang or dir on the page's element.
    const headless = document.createElement('div');
    document.body.append(headless);
    const c = new window.sotto.Client(headless, {}, { ui: false, locale: 'de' });
    const left = { shadow: headless.shadowRoot === null, lang: headless.getAttribute('lang') };
    c.destroy();
    return { codes, left, shadow: el.shadowRoot === null };
  });
  assert.deepEqual(refused.codes, ['bad_option', 'bad_option', 'bad_option', 'bad_option']);
  assert.equal(refused.shadow, true, 'a refused client draws nothing');
  assert.deepEqual(refused.left, { shadow: true, lang: null });

  // Waiting for a token, in German; and in English, with a warning, when the German words
  // cannot be fetched.
  const status = async (p) => {
    await p.evaluate(() => {
      const el = document.createElement('div');
      el.id = 'waiting';
      document.body.append(el);
      window.waiting = new window.sotto.Client(el, {}, { locale: 'de' });
    });
    const s = p.locator('#waiting .status');
    await s.filter({ hasNotText: /^(Connecting…|Verbindung wird hergestellt…)$/ }).waitFor();
    return s.textContent();
  };
  assert.equal(await status(page), 'Warten auf die Anmeldung');
  const offline = await newPage(env.browser);
  await offline.route('**/locales/de.json', (route) => route.abort());
  await offline.goto(`${env.server.base}/`);
  assert.equal(await status(offline), 'Waiting for sign-in');
  assert.ok(offline.log.some((l) => l.includes('the de words could not be loaded')), offline.log.join('\n'));
  assert.equal(await offline.locator('#waiting').getAttribute('lang'), null, 'English words are not marked German');
});
