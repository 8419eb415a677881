// Sotto's UI in other languages: the `locale` and `strings` options.
//
// The UI is written in English, and each English text is its own key, as in gettext. A
// table maps it to another language's words, with `{}` where the English has a name or a
// number, filled in the same order (`{0}`, `{1}`… reorder them). The wasm holds English
// only, so a language costs it nothing: this shell translates Sotto's shadow DOM as it is
// drawn (a MutationObserver, before the browser paints), and never what people wrote —
// messages, names and titles are skipped by element, so a message that reads "Send"
// still reads "Send". Dates and times come from the browser's Intl in the same locale.
//
// The shipped tables are JSON files beside the script (js/locales/ → pkg/locales/),
// fetched only by a page that asks for their language: English pages load none of it.
// `__locales` (supplied by scripts/assemble-pkg.mjs) maps each language to its file's URL.

// Languages written right to left.
const RIGHT_TO_LEFT = ['ar', 'arc', 'ckb', 'dv', 'fa', 'he', 'ps', 'sd', 'ug', 'ur', 'yi'];

// What people wrote: never translated.
const USER_TEXT = '.sender, .who, .brand, .msg:not(.gone) > .text, .attachment, .tray button, .reaction, .code, .number, .suggest, .day, time, style, textarea';
// Where people's words and Sotto's share a text (a name in "Bob is typing…", a quote in
// "Replying to Bob: …", a title that may be Sotto's "Just you"): there only the keys Sotto
// puts in that place are tried, as the whole text, so what fills a hole (a name, a quote)
// is never read as another key. By element, for its text and its labels; first match wins.
const PLACES = [
  ['.name, .thread-title', ['Just you', 'No thread open']],
  ['.preview, .quote', ['Message deleted', '{}: Message deleted', 'An earlier message', 'Attachment: {}', '{}: Attachment: {}', 'Reply to {}']],
  ['.context span', ['Editing your message', 'Replying to {}: {}']],
  ['.typing', ['{} is typing…', '{} and {} are typing…', '{} people are typing…']],
  ['.attachment', ['Download {}']],
  ['.tray', ['Files to send', 'Remove {}', 'Sending files']],
  ['.unread', ['{} unread']],
  ['.note span', ['The security key of {} changed.', 'New device for {}.']],
  ['.state', ['Sending when online…', 'Not sent', 'Not delivered (expired)', 'Read', 'Read by everyone', 'Read by {}', 'Read by {} of {}', 'Delivered', 'Sent']],
];
// Names with Sotto's notes among them: each note is translated where it stands.
const NOTES = '.members, .warn';
const NOTE_KEYS = [
  '{} has not joined yet and will not see messages sent before joining.',
  '{} have not joined yet and will not see messages sent before joining.',
  ' (account disabled)', ' (not joined yet)',
  ' · messages disappear after {} s', ' · messages disappear after {} min',
  ' · messages disappear after {} h', ' · messages disappear after {} d',
  'You are no longer a member of this thread.',
];
const ATTRIBUTES = ['aria-label', 'placeholder'];

// The longest text (or part of one) that a key with `{}` is matched against.
const LONGEST = 2000;

// The keys allowed at `el` (PLACES), or undefined where every key may be.
const allowedAt = (el) => PLACES.find(([selector]) => el.closest(selector))?.[1];

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// `value` with its `{}` (in order) or `{N}` filled from `args`.
function fill(value, args) {
  let next = 0;
  return value.replace(/\{(\d*)\}/g, (_, n) => args[n === '' ? next++ : Number(n)] ?? '');
}

// Reads `locale` and `strings` as the options give them; throws a `bad_option` message.
function readLanguageOptions({ locale, strings }) {
  if (locale != null) {
    if (typeof locale !== 'string') throw new TypeError('locale must be a string such as "de" or "he-IL"');
    try {
      // "de_DE", as some systems write it, is "de-DE".
      [locale] = Intl.getCanonicalLocales(locale.replaceAll('_', '-'));
    } catch {
      throw new TypeError(`locale ${JSON.stringify(locale)} is not a language tag such as "de" or "he-IL"`);
    }
  }
  if (strings != null) {
    if (typeof strings !== 'object' || Array.isArray(strings)) {
      throw new TypeError('strings must be an object of English text to translation');
    }
    for (const [key, value] of Object.entries(strings)) {
      if (typeof value !== 'string') throw new TypeError(`strings[${JSON.stringify(key)}] must be a string`);
    }
  }
  return { locale: locale ?? undefined, strings: strings ?? undefined };
}

const languageOf = (locale) => (locale ? locale.split('-')[0].toLowerCase() : 'en');

/**
 * The words for `locale`: its language's shipped `table` ("de-AT" reads de.json), with the
 * site's `strings` over it; `translate(english)` gives the text to show.
 */
function makeTranslator(locale, strings, table = {}) {
  const language = languageOf(locale);
  table = { ...table, ...strings };
  const exact = new Map();
  const templates = [];
  for (const [key, value] of Object.entries(table)) {
    // A table is data from the network: anything but text is no translation.
    if (typeof value !== 'string') continue;
    if (!key.includes('{}')) {
      exact.set(key, value);
      continue;
    }
    const parts = key.split('{}');
    // What fills a hole is at most LONGEST characters: a name chosen to repeat a note's
    // words cannot make a pattern scan the rest of a long text from each of them.
    const pattern = parts.map(escapeRegExp).join(`([\\s\\S]{0,${LONGEST}}?)`);
    templates.push({
      key,
      value,
      // Every fixed part must be in a text before a pattern is tried on it: cheap, and it
      // keeps a pattern from scanning a long text that cannot hold it.
      parts: parts.filter(Boolean),
      holes: parts.length - 1,
      whole: new RegExp(`^${pattern}$`),
      within: new RegExp(pattern, 'g'),
    });
  }
  // The most specific first: of two keys that fit a text, the one with more of its own
  // words ("Replying to {}: {}" before "{} unread").
  const fixed = (t) => t.parts.join('').length;
  templates.sort((a, b) => fixed(b) - fixed(a));
  const holds = (text, t) => t.parts.every((p) => text.includes(p));
  const translate = (text, allowed) => {
    if (exact.has(text) && (!allowed || allowed.includes(text))) return exact.get(text);
    if (text.length > LONGEST) return text;
    for (const t of templates) {
      if (allowed && !allowed.includes(t.key)) continue;
      if (!holds(text, t)) continue;
      const m = t.whole.exec(text);
      if (m) return fill(t.value, m.slice(1));
    }
    return text;
  };
  // Each of Sotto's notes in `text` translated where it stands; the names around them are
  // left as they are.
  const translateNotes = (text) => {
    let out = text;
    for (const key of NOTE_KEYS) {
      const t = templates.find((x) => x.key === key);
      // A note that starts with its one hole ("{} has not joined yet…") whose translation
      // does too: its words are replaced where they stand, with no pattern to scan.
      const lead = t && t.holes === 1 && key.startsWith('{}') && t.value.startsWith('{}') && !t.value.slice(2).includes('{');
      if (exact.has(key) || lead) {
        const [from, to] = lead ? [key.slice(2), t.value.slice(2)] : [key, exact.get(key)];
        out = out.split(from).join(to);
      } else if (t && holds(out, t)) {
        out = out.replace(t.within, (...m) => fill(t.value, m.slice(1, t.holes + 1)));
      }
    }
    return out;
  };
  const rtl = RIGHT_TO_LEFT.includes(language);
  const empty = exact.size + templates.length === 0;
  // Whether the UI is in the locale's language: English is, and so is any language the
  // table or the site's strings give words for. Otherwise the words stay English, and
  // `lang` must not tell a screen reader they are not.
  const speaks = language === 'en' || !empty;
  return { translate, translateNotes, locale, rtl, empty, speaks };
}

/**
 * The translator for the language options, once its shipped table (if any) has come. A
 * table that cannot be fetched leaves the words English, with a warning: the messenger
 * works on without it.
 */
async function loadTranslator({ locale, strings }) {
  const url = __locales[languageOf(locale)];
  let table;
  if (url) {
    try {
      // A file that does not come soon leaves the UI English rather than never drawn.
      const late = new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 10 s')), 10000));
      const res = await Promise.race([fetch(url), late]);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      table = await res.json();
    } catch (err) {
      console.warn(`sotto: the ${languageOf(locale)} words could not be loaded from ${url} (${err.message}); the UI stays English`);
    }
  }
  return makeTranslator(locale, strings, table);
}

/**
 * Keeps the UI in `root` (Sotto's shadow root) in the translator's language as it is drawn;
 * returns what stops it.
 */
function translateUi(root, translator) {
  // What this wrote last, per node (and attribute): met again, it is not translated twice.
  const written = new WeakMap();
  const set = (node, name, from, to) => {
    if (to === from) return;
    const record = written.get(node) ?? {};
    record[name] = to;
    written.set(node, record);
    if (name === '#text') node.data = to;
    else node.setAttribute(name, to);
  };
  const ours = (node, name, value) => written.get(node)?.[name] === value;
  const text = (node) => {
    const parent = node.parentElement;
    if (!parent || ours(node, '#text', node.data) || !node.data.trim()) return;
    if (parent.closest(USER_TEXT)) return;
    let to;
    if (parent.closest(NOTES)) to = translator.translateNotes(node.data);
    else to = translator.translate(node.data, allowedAt(parent));
    set(node, '#text', node.data, to);
  };
  const attribute = (el, name) => {
    const value = el.getAttribute(name);
    if (value === null || ours(el, name, value)) return;
    set(el, name, value, translator.translate(value, allowedAt(el)));
  };
  const tree = (node) => {
    if (node.nodeType === 3) return text(node);
    if (node.nodeType !== 1 && node.nodeType !== 11) return;
    if (node.nodeType === 1) for (const name of ATTRIBUTES) attribute(node, name);
    for (const child of node.childNodes) tree(child);
  };
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'childList') r.addedNodes.forEach(tree);
      else if (r.type === 'characterData') text(r.target);
      else attribute(r.target, r.attributeName);
    }
  });
  observer.observe(root, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
    attributeFilter: ATTRIBUTES,
  });
  tree(root);
  // A field's own problem shows in the browser's bubble, not in the DOM: translate it as it
  // is reported (`invalid` does not bubble, so this listens on the way down).
  const invalid = (e) => {
    const field = e.target;
    const to = translator.translate(field.validationMessage);
    if (to !== field.validationMessage) field.setCustomValidity(to);
  };
  root.addEventListener('invalid', invalid, true);
  return () => {
    observer.disconnect();
    root.removeEventListener('invalid', invalid, true);
  };
}
