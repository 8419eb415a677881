// The UI's languages (js/i18n.js), without a browser: each shipped table's keys are texts
// the UI really shows (a key whose English changed in the Rust would silently stop
// translating), each translation keeps its key's placeholders, and the translator fills
// them, leaves names in notes alone, and stays fast on long texts. The browser test
// (tests/e2e/language.test.mjs) checks the drawn UI in German and right to left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { makeTranslator: make, readLanguageOptions } = new Function(
  `${readFileSync(join(root, 'js/i18n.js'), 'utf8')}\nreturn { makeTranslator, readLanguageOptions };`,
)();
const translations = Object.fromEntries(
  readdirSync(join(root, 'js/locales')).map((f) => [f.replace('.json', ''), JSON.parse(readFileSync(join(root, 'js/locales', f), 'utf8'))]),
);
// As the shell does: the language's shipped table, with the site's strings over it.
const makeTranslator = (locale, strings) => make(locale, strings, translations[locale?.split('-')[0]]);

const sources = (dir, ext) =>
  readdirSync(join(root, dir), { recursive: true })
    .filter((f) => f.endsWith(ext))
    .map((f) => readFileSync(join(root, dir, f), 'utf8'))
    .join('\n');
const rust = sources('src', '.rs');
const shell = ['js/client.js', 'js/widget.js'].map((f) => readFileSync(join(root, f), 'utf8')).join('\n');

// Texts the Rust puts together from pieces: the pieces each must still be there.
const COMPOSED = {
  '{}: Message deleted': ['"{}: {}"', '"Message deleted"'],
  '{}: Attachment: {}': ['"{}: {}"', '"Attachment: {}"'],
  '{} has not joined yet and will not see messages sent before joining.': ['"{} {} not joined yet and will not see messages sent before joining."', '"has"'],
  '{} have not joined yet and will not see messages sent before joining.': ['"{} {} not joined yet and will not see messages sent before joining."', '"have"'],
  '{} (key changed):': ['"{name}{mark}:"', '" (key changed)"'],
  '{} (verified):': ['"{name}{mark}:"', '" (verified)"'],
  '{}: this user has not set up Sotto yet': ['"{name}: {}"', '"this user has not set up Sotto yet"'],
};

test('every key of the German table is a text the UI shows', () => {
  const stale = Object.keys(translations.de).filter((key) => {
    // The fixed parts of a key, as Rust's string literals hold them (`{}` and `{name}` are
    // where format! fills in; a `'` or `"` may be escaped there).
    const parts = COMPOSED[key] ?? key.split('{}').map((p) => p.trim()).filter((p) => p.length > 1);
    const found = (p) => rust.includes(p) || rust.includes(p.replaceAll('"', '\\"')) || shell.includes(p);
    return parts.length > 0 && !parts.every(found);
  });
  assert.deepEqual(stale, [], 'keys no Rust or shell text holds (the English changed?)');
});

test('each translation has its key\'s placeholders, and is not left empty', () => {
  for (const [key, value] of Object.entries(translations.de)) {
    const holes = (s) => (s.match(/\{\d*\}/g) ?? []).length;
    assert.equal(holes(value), holes(key), `placeholders of ${JSON.stringify(key)}`);
    assert.ok(value.trim(), `translation of ${JSON.stringify(key)}`);
  }
});

test('texts, templates and notes are translated; names and unknown texts are left as they are', () => {
  const de = makeTranslator('de-AT');
  assert.equal(de.translate('Send'), 'Senden', 'de-AT reads the de table');
  assert.equal(de.translate('Bob Brown is typing…'), 'Bob Brown schreibt…');
  assert.equal(de.translate('Alice and Bob are typing…'), 'Alice und Bob schreiben…');
  assert.equal(de.translate('Something new'), 'Something new');
  // Only the keys allowed where people's words are.
  assert.equal(de.translate('Send', ['Just you']), 'Send');
  assert.equal(de.translate('Just you', ['Just you']), 'Nur Sie');
  // Notes among names: each translated where it stands; a name that reads like a word of
  // the UI stays.
  assert.equal(
    de.translateNotes('Read Only, Bob (not joined yet), Carol (account disabled) · messages disappear after 5 min'),
    'Read Only, Bob (noch nicht beigetreten), Carol (Konto deaktiviert) · Nachrichten verschwinden nach 5 Min.',
  );
  assert.equal(
    de.translateNotes('Dan, New device for Carol has not joined yet and will not see messages sent before joining.'),
    'Dan, New device for Carol ist noch nicht beigetreten und sieht keine Nachrichten, die vorher gesendet wurden.',
  );
  // A note at the end of the thread is one text with one name.
  const note = ['The security key of {} changed.', 'New device for {}.'];
  assert.equal(de.translate('The security key of Bob changed.', note), 'Der Sicherheitsschlüssel von Bob hat sich geändert.');
  assert.equal(de.translate('New device for Send.', note), 'Neues Gerät für Send.');
});

test('what fills a hole is never read as another key', () => {
  const de = makeTranslator('de');
  // The quote reads like "{} unread"; the frame is the more specific key.
  assert.equal(de.translate('Replying to Bob: I have 3 unread'), 'Antwort an Bob: I have 3 unread');
  assert.equal(de.translate('Reply to Bob: 3 unread'), 'Antwort auf Bob: 3 unread');
  // Where the place allows only its own keys, a file named like a notice stays a name.
  assert.equal(de.translate('Download Sign-in failed: x', ['Download {}']), 'Sign-in failed: x herunterladen');
  // A note that starts with a name, among many long names, is replaced where it stands.
  const names = Array.from({ length: 2000 }, (_, i) => `Member number ${i} with a long name`).join(', ');
  const started = performance.now();
  const out = de.translateNotes(`${names} have not joined yet and will not see messages sent before joining.`);
  assert.equal(out, `${names} sind noch nicht beigetreten und sehen keine Nachrichten, die vorher gesendet wurden.`);
  console.log(`a note after ${names.length} characters of names: ${(performance.now() - started).toFixed(1)} ms`);
});

test('a site\'s strings add to or replace the table, and may reorder what is filled in', () => {
  const own = makeTranslator('de', { Send: 'Abschicken', 'Replying to {}: {}': '«{1}» — Antwort an {0}' });
  assert.equal(own.translate('Send'), 'Abschicken');
  assert.equal(own.translate('Cancel'), 'Abbrechen');
  assert.equal(own.translate('Replying to Bob: the plan'), '«the plan» — Antwort an Bob');
  const hebrew = makeTranslator('he', { Send: 'שלח' });
  assert.equal(hebrew.rtl, true);
  assert.equal(hebrew.translate('Send'), 'שלח');
  assert.equal(hebrew.translate('Cancel'), 'Cancel', 'English where the site gave no word');
  assert.equal(makeTranslator('en').empty, true, 'English needs no translating');
  assert.equal(makeTranslator('de').rtl, false);
});

test('long texts are translated in linear time, not by a pattern scanning them', () => {
  const de = makeTranslator('de');
  // Names chosen to start a note many times over, with its end only before them all: a
  // pattern free to scan from each start to the end of the text would take minutes.
  const names = 'Bob changed. '
    + Array.from({ length: 5000 }, (_, i) => `The security key of Member ${i}`).join(', ');
  const started = performance.now();
  for (let i = 0; i < 20; i++) {
    de.translate(names);
    de.translateNotes(names);
  }
  // Not a timing assertion: the result shows it ran through (a quadratic scan of 150 KB
  // would not return within the test's time).
  assert.ok(de.translateNotes(names) === names, 'no note in it');
  console.log(`20 × two passes over ${names.length} characters: ${(performance.now() - started).toFixed(1)} ms`);
});

test('a table served with values that are not text translates nothing with them', () => {
  const odd = make('de', undefined, { Send: 5, Cancel: null, 'Reply to {}': { x: 1 }, Edit: 'Bearbeiten' });
  assert.equal(odd.translate('Send'), 'Send');
  assert.equal(odd.translate('Reply to Bob'), 'Reply to Bob');
  assert.equal(odd.translate('Edit'), 'Bearbeiten');
});

test('bad language options are refused with their reason', () => {
  assert.deepEqual(readLanguageOptions({ locale: 'de-at' }), { locale: 'de-AT', strings: undefined });
  assert.throws(() => readLanguageOptions({ locale: 'not a tag!' }), /language tag/);
  assert.throws(() => readLanguageOptions({ locale: 7 }), /locale must be a string/);
  assert.throws(() => readLanguageOptions({ strings: ['Send'] }), /strings must be an object/);
  assert.throws(() => readLanguageOptions({ strings: { Send: 5 } }), /strings\["Send"\] must be a string/);
});
