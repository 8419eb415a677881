// End to end: @-completion in the composer. Typing @ and the start of a member's tag or
// name offers the thread's members; arrows choose, Enter or Tab complete (and do not
// send), Escape closes, a click picks; what is sent mentions the member, whose browser
// flags it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, aliceAndBob, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

test('@ offers the members, completes their tag without sending, and the mention arrives', async (t) => {
  const { alice, bob } = await aliceAndBob(t, env);
  const id = await alice.evaluate(() => window.client.threadStartWithExpression('@bob + @carol'));
  const composer = alice.getByLabel('Message', { exact: true });
  const options = alice.locator('.suggest [role=option]');
  const list = alice.getByRole('listbox', { name: 'People to mention' });

  await composer.click();
  await alice.keyboard.type('Hi @b');
  await list.waitFor();
  assert.deepEqual(await options.allTextContents(), ['Bob Brown@bob']);
  // A combobox a screen reader follows: expanded, with the chosen option named.
  assert.equal(await composer.getAttribute('aria-expanded'), 'true');
  assert.equal(await composer.getAttribute('aria-activedescendant'), await options.first().getAttribute('id'));
  await alice.screenshot({ path: join(artifacts, 'mentions-offered.png') });
  await alice.keyboard.press('Enter');
  assert.equal(await composer.inputValue(), 'Hi @bob ', 'completed, not sent');
  assert.equal(await list.isVisible(), false);
  assert.equal(await alice.locator('.msg.out').count(), 0);

  // Everyone for a bare @; the arrows choose, Tab completes.
  await alice.keyboard.type('and @');
  const tags = await alice.locator('.suggest .tag').allTextContents();
  assert.deepEqual([...tags].sort(), ['@bob', '@carol']);
  await alice.keyboard.press('ArrowDown');
  assert.equal(await options.nth(1).getAttribute('aria-selected'), 'true');
  await alice.keyboard.press('Tab');
  assert.equal(await composer.inputValue(), `Hi @bob and ${tags[1]} `);
  await composer.fill('Hi @bob and @carol ');

  // Nobody fits: no list. Escape closes it and keeps the text.
  await alice.keyboard.type('@zz');
  assert.equal(await list.isVisible(), false);
  await alice.keyboard.type(' @ch');
  assert.deepEqual(await options.allTextContents(), ['Carol Chen@carol'], 'a name\'s second word fits too');
  await alice.keyboard.press('Escape');
  assert.equal(await list.isVisible(), false);
  assert.equal(await composer.inputValue(), 'Hi @bob and @carol @zz @ch');

  // A click picks; then Enter sends, the list being closed.
  await composer.fill('Over to you, ');
  await alice.keyboard.type('@bo');
  await options.first().click();
  assert.equal(await composer.inputValue(), 'Over to you, @bob ');
  await alice.keyboard.press('Enter');
  await alice.locator('.msg.out').first().waitFor();

  // A tag typed out in full: Enter sends, list or not.
  await alice.keyboard.type('ask @bob');
  await list.waitFor();
  await alice.keyboard.press('Enter');
  await alice.locator('.msg.out .text', { hasText: 'ask @bob' }).waitFor();
  assert.equal(await composer.getAttribute('aria-expanded'), 'false');

  await bob.locator(`[data-thread="${id}"]`).click();
  await bob.locator('.msg.in.mention .text', { hasText: 'Over to you, @bob' }).waitFor({ timeout: 10000 });
});
