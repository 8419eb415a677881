// End to end: a conversation reads like a messenger's, between real browsers through the
// real server. A sender's run of messages is one group with one name; one's own bubbles
// carry no name and the delivery state shows once; links in a message open (and nothing
// in it is taken as HTML); each thread keeps its own draft; a new message below a reader
// who scrolled up shows a pill instead of moving them; and a dialog keeps the keyboard
// inside until Escape, then gives the focus back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, aliceAndBob, until, artifacts } from './harness.mjs';

const env = useServerAndBrowser();

/** The element focused inside Sotto's shadow root on `page`: its tag, name and text. */
const focused = (page) =>
  page.evaluate(() => {
    const a = document.querySelector('#messenger').shadowRoot.activeElement;
    return a ? [a.tagName, a.getAttribute('name'), a.textContent].filter(Boolean).join(' ') : 'none';
  });

test('a run of messages is one group, links open, and nothing is taken as HTML', async (t) => {
  const { alice, bob } = await aliceAndBob(t, env);
  const id = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  await alice.evaluate((id) => window.client.threadOpen(id), id);
  const texts = [
    'Morning! The report is ready',
    'It is at https://example.com/reports/q3_(final) and a copy at http://files.example.test.',
    '<b>not bold</b> <img src=x onerror=alert(1)> javascript:alert(1) www.example.com',
    // A bracket the link opened stays in it. A direction mark before a link cannot turn
    // it round (it is isolated); one inside an address keeps that address text.
    'Wrapped (http://w.example/a_(b)) and \u202Ehttps://evil.example/x, https://evil.example/\u202Emoc.knab',
  ];
  for (const text of texts) {
    await alice.getByLabel('Message', { exact: true }).fill(text);
    await alice.getByLabel('Message', { exact: true }).press('Enter');
  }
  await bob.locator(`[data-thread="${id}"]`).click();
  await bob.locator('.msg.in').nth(3).waitFor();

  // One group: the name on the first message only.
  const groupedIn = await bob.locator('.msg.in').evaluateAll((ms) => ms.map((m) => m.classList.contains('cont')));
  assert.deepEqual(groupedIn, [false, true, true, true]);
  assert.equal(await bob.locator('.msg.in .sender:visible').count(), 1);
  assert.equal(await bob.locator('.msg.in .sender:visible').textContent(), 'Alice Adams');

  // The links, as the text shows them, opening in a new tab without opener or referrer.
  const links = await bob.locator('.msg.in .text a').evaluateAll((as) =>
    as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent, target: a.target, rel: a.rel, dir: a.dir })));
  assert.deepEqual(links.map((l) => l.href), ['https://example.com/reports/q3_(final)', 'http://files.example.test', 'http://w.example/a_(b)', 'https://evil.example/x']);
  for (const l of links) {
    assert.equal(l.dir, 'ltr', 'isolated from the text around it');
    assert.equal(l.text, l.href, 'a link leads where its text says');
    assert.equal(l.target, '_blank');
    assert.match(l.rel, /noopener/);
    assert.match(l.rel, /noreferrer/);
  }
  const third = bob.locator('.msg.in .text').nth(2);
  assert.equal(await third.textContent(), texts[2], 'shown as typed');
  assert.equal(await third.locator('*').count(), 0, 'no element made from a message');
  assert.equal(await bob.locator('.msg.in .text').nth(1).textContent(), texts[1]);
  assert.equal(await bob.locator('.msg.in .text').nth(3).textContent(), texts[3]);

  // Alice's side: no name on her own bubbles, and "Read" once, on the last.
  await until(alice, () => document.querySelector('#messenger').shadowRoot.querySelectorAll('.msg.out[data-status="read"]').length === 4, null, { what: 'all four read' });
  assert.equal(await alice.locator('.msg.out .sender:visible').count(), 0);
  const states = alice.locator('.msg.out .state:visible');
  assert.equal(await states.count(), 1);
  assert.equal(await states.textContent(), 'Read');
  assert.equal(await alice.locator('.msg.out').last().locator('.state').isVisible(), true);
  await alice.screenshot({ path: join(artifacts, 'conversation-grouped-sender.png') });
  await bob.screenshot({ path: join(artifacts, 'conversation-grouped-desktop.png') });
  // At a phone's width, dark.
  await bob.setViewportSize({ width: 320, height: 640 });
  await bob.evaluate(() => document.querySelector('#messenger').setAttribute('data-sotto-theme', 'dark'));
  await bob.screenshot({ path: join(artifacts, 'conversation-grouped-320-dark.png') });
});

test('in a group, each run of received messages starts with its sender\'s initials', async (t) => {
  const pages = [];
  for (const user of ['alice', 'bob', 'carol']) {
    const page = await newPage(env.browser);
    await openDemoAs(page, env.server.base, user);
    pages.push(page);
  }
  const [alice, bob, carol] = pages;
  t.after(() => {
    if (t.error) pages.forEach((p) => console.log(p.log.join('\n')));
  });
  const id = await alice.evaluate(() => window.client.threadStartWithExpression('@bob + @carol'));
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'Stand-up in five minutes'), id);
  for (const [page, text] of [[bob, 'On my way'], [bob, 'Bringing the notes'], [carol, 'Starting without me?']]) {
    await until(page, async (id) => (await window.client.threadMessages(id).catch(() => [])).length > 0, id, { what: 'the thread' });
    await page.evaluate(([id, text]) => window.client.threadSendMessage(id, text), [id, text]);
  }
  await alice.evaluate((id) => window.client.threadOpen(id), id);
  await alice.locator('.msg.in').nth(2).waitFor({ timeout: 10000 });
  // Initials drawn beside the first of each run, not its later messages nor one's own.
  const drawn = await alice.locator('.msg').evaluateAll((ms) => ms.map((m) => [m.dataset.initials ?? '', getComputedStyle(m, '::before').width]));
  assert.deepEqual(drawn, [['', 'auto'], ['BB', '28px'], ['', 'auto'], ['CC', '28px']]);
  // Bob's own view of a run he wrote has Carol's and Alice's, not his.
  await bob.evaluate((id) => window.client.threadOpen(id), id);
  await bob.locator('.msg.in').nth(1).waitFor({ timeout: 10000 });
  assert.deepEqual(await bob.locator('.msg.in').evaluateAll((ms) => ms.map((m) => m.dataset.initials)), ['AA', 'CC']);
  await alice.screenshot({ path: join(artifacts, 'conversation-initials-desktop.png') });
  await alice.setViewportSize({ width: 320, height: 640 });
  await alice.evaluate(() => document.querySelector('#messenger').setAttribute('data-sotto-theme', 'dark'));
  await alice.screenshot({ path: join(artifacts, 'conversation-initials-320-dark.png') });
});

test('each thread keeps its own draft, and new messages below a reader show a pill', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser, { width: 1000, height: 600 });
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  await openDemoAs(bob, env.server.base, 'bob');
  const withBob = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  const withCarol = await alice.evaluate(() => window.client.threadStartWithExpression('@carol'));

  // Drafts: what Alice writes to Bob does not follow her into Carol's thread.
  const composer = alice.getByLabel('Message', { exact: true });
  await alice.locator(`[data-thread="${withBob}"]`).click();
  await composer.fill('for Bob, not sent yet\nsecond line');
  await alice.locator(`[data-thread="${withCarol}"]`).click();
  assert.equal(await composer.inputValue(), '', "Carol's thread starts empty");
  await composer.fill('for Carol');
  await alice.locator(`[data-thread="${withBob}"]`).click();
  assert.equal(await composer.inputValue(), 'for Bob, not sent yet\nsecond line');
  // The composer grew to show both lines.
  const height = await composer.evaluate((c) => c.getBoundingClientRect().height);
  await alice.locator(`[data-thread="${withCarol}"]`).click();
  assert.equal(await composer.inputValue(), 'for Carol');
  assert.ok(height > (await composer.evaluate((c) => c.getBoundingClientRect().height)), 'two lines are taller than one');

  // A long conversation, read from the top.
  for (let i = 1; i <= 30; i++) {
    await alice.evaluate(([id, i]) => window.client.threadSendMessage(id, `message ${i}`), [withBob, i]);
  }
  await bob.locator(`[data-thread="${withBob}"]`).click();
  await bob.locator('.msg.in .text', { hasText: 'message 30' }).waitFor();
  const list = bob.locator('.messages');
  await list.evaluate((l) => { l.scrollTop = 0; });
  const pill = bob.getByRole('button', { name: 'New messages ↓' });
  assert.equal(await pill.isVisible(), false, 'no pill while nothing new came');
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'below the fold'), withBob);
  await bob.locator('.msg.in .text', { hasText: 'below the fold' }).waitFor({ state: 'attached' });
  await pill.waitFor();
  assert.equal(await list.evaluate((l) => l.scrollTop), 0, 'the reader was not moved');
  await bob.screenshot({ path: join(artifacts, 'conversation-new-messages-pill.png') });
  await pill.click();
  await pill.waitFor({ state: 'hidden' });
  assert.ok(await list.evaluate((l) => l.scrollTop + l.clientHeight + 40 >= l.scrollHeight), 'at the newest');
  // A reader at the bottom follows the conversation, with no pill.
  await alice.evaluate((id) => window.client.threadSendMessage(id, 'followed'), withBob);
  await bob.locator('.msg.in .text', { hasText: 'followed' }).waitFor();
  assert.equal(await pill.isVisible(), false);
});

test('a dialog keeps the keyboard inside, Escape leaves it, and the focus comes back', async (t) => {
  const alice = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  const backup = alice.getByRole('button', { name: 'Back up your key with a passphrase' });
  await backup.focus();
  await alice.keyboard.press('Enter');
  await alice.locator('.dialog-title', { hasText: 'Back up your key' }).waitFor();
  assert.equal(await focused(alice), 'INPUT passphrase');
  // Everything behind the dialog is out of reach while it shows.
  assert.equal(await alice.locator('.body').getAttribute('inert'), '');
  // Tab goes round the dialog's own controls, both ways.
  await alice.keyboard.press('Shift+Tab');
  assert.equal(await focused(alice), 'BUTTON Cancel');
  await alice.keyboard.press('Tab');
  assert.equal(await focused(alice), 'INPUT passphrase');
  for (let i = 0; i < 4; i++) await alice.keyboard.press('Tab');
  assert.equal(await focused(alice), 'INPUT passphrase', 'round the four controls and back');
  // Escape takes the way out, and the focus goes back to the button that opened it.
  await alice.keyboard.type('abandoned');
  await alice.keyboard.press('Escape');
  await alice.locator('.overlay').waitFor({ state: 'hidden' });
  assert.equal(await focused(alice), 'BUTTON Key backup');
  assert.equal(await alice.locator('.body').getAttribute('inert'), null);

  // A confirmation closes on Escape without doing what it asks.
  const bob = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  const id = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  await alice.evaluate((id) => window.client.threadOpen(id), id);
  await alice.getByLabel('Message', { exact: true }).fill('keep me');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  const mine = alice.locator('.msg.out', { hasText: 'keep me' });
  // Delivered to Bob's open page (it is drawn again as its state changes until then).
  await mine.locator('.state', { hasText: 'Delivered' }).waitFor();
  await mine.focus();
  await mine.getByRole('button', { name: 'Delete' }).click();
  await alice.locator('.dialog-title', { hasText: 'Delete this message?' }).waitFor();
  await alice.keyboard.press('Escape');
  await alice.locator('.overlay').waitFor({ state: 'hidden' });
  assert.equal(await mine.locator('.text').textContent(), 'keep me');
});
