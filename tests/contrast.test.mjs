// The UI's colours against WCAG 2.1 AA (4.5:1 for text), in both themes, read from the
// stylesheet itself (src/ui.css): each pair of text and background that Sotto draws,
// including the message details shown at reduced opacity over a bubble. A change of
// palette that makes some text hard to read fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const css = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'ui.css'), 'utf8');

/** The custom properties set in the first rule whose selector starts with `selector`. */
function palette(selector) {
  const at = css.indexOf(selector);
  assert.ok(at >= 0, `no ${selector} rule`);
  const body = css.slice(css.indexOf('{', at) + 1, css.indexOf('}', at));
  return Object.fromEntries([...body.matchAll(/--sotto-([a-z-]+):\s*(#[0-9a-f]{6})/g)].map((m) => [m[1], m[2]]));
}
const light = palette(':host {');
const dark = { ...light, ...palette(':host([data-sotto-theme="dark"])') };

const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
const luminance = (c) => {
  const [r, g, b] = c.map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
/** `fg` at `alpha` over `bg`, as drawn. */
const over = (fg, bg, alpha) => rgb(fg).map((v, i) => v * alpha + rgb(bg)[i] * (1 - alpha));
const contrast = (a, b) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};

test("initials are readable on each sender's tone, in either theme", () => {
  const rule = (selector) => css.match(new RegExp(`${selector}::before \\{[^}]*background: (#[0-9a-f]{6})`))?.[1];
  const tones = ['\\[data-initials\\]', ...[1, 2, 3, 4, 5].map((n) => `\\[data-group\\] \\[data-tone="${n}"\\]`)].map(rule);
  assert.equal(tones.filter(Boolean).length, 6, 'six tones (ui.rs picks among six)');
  const low = tones.filter((tone) => contrast(rgb('#ffffff'), rgb(tone)) < 4.5);
  assert.deepEqual(low, [], 'tones below 4.5:1 under white initials');
});

for (const [theme, p] of [['light', light], ['dark', dark]]) {
  test(`the ${theme} theme's text is readable (WCAG AA, 4.5:1)`, () => {
    const pairs = {
      'text on the background': [rgb(p.fg), p.bg],
      'muted text (names, times, notes) on the background': [rgb(p.muted), p.bg],
      'muted text on a received bubble or the open thread in the list': [rgb(p.muted), p['bubble-in']],
      'text on a received bubble': [rgb(p.fg), p['bubble-in']],
      "a received message's details (90 %)": [over(p.fg, p['bubble-in'], 0.9), p['bubble-in']],
      'text on the accent (own bubbles, buttons)': [rgb(p['accent-fg']), p.accent],
      "an own message's details (90 %)": [over(p['accent-fg'], p.accent, 0.9), p.accent],
      'problems (notices, warnings) on the background': [rgb(p.danger), p.bg],
    };
    const low = Object.entries(pairs)
      .map(([what, [fg, bg]]) => [what, Math.round(contrast(fg, rgb(bg)) * 100) / 100])
      .filter(([, ratio]) => ratio < 4.5);
    assert.deepEqual(low, [], `below 4.5:1 in the ${theme} theme`);
  });
}
