// End to end: what happens to a message after it is sent — its sender edits it or deletes
// it for everyone, members react to it and reply to it, and mentions flag it — between two
// real browsers through the real server, by the UI and by the page API. Each change travels
// encrypted like a message; the server's database never holds its text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServerAndBrowser, newPage, openDemoAs, until, artifacts, databaseText } from './harness.mjs';

const env = useServerAndBrowser();

/** Alice and Bob signed in (Bob first, so Alice has his device to send to). */
async function signedIn(t) {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  return { alice, bob };
}

/** Alice and Bob, each with the thread open and a listener recording the page events. */
async function aliceAndBob(t) {
  const { alice, bob } = await signedIn(t);
  const threadId = await alice.evaluate(() => window.client.threadStartWithExpression('@bob'));
  for (const page of [alice, bob]) {
    await page.evaluate(() => {
      window.updates = [];
      window.arrived = [];
      window.client.addEventListener('thread-message-update', (e) => window.updates.push(e.detail));
      window.client.addEventListener('thread-message', (e) => window.arrived.push(e.detail));
    });
  }
  return { alice, bob, threadId };
}

/** Points at a message (its toolbar shows) and presses one of its actions. */
async function act(page, text, name) {
  const item = page.locator('.msg').filter({ has: page.locator('.text', { hasText: text }) }).last();
  await item.hover();
  await item.locator('.tools').getByRole('button', { name, exact: true }).click();
}

test('a sender edits and deletes for everyone; members react and reply, by the UI', async (t) => {
  const { alice, bob, threadId } = await aliceAndBob(t);
  const typo = 'Meet at teh station ' + Math.random().toString(36).slice(2);
  const fixed = typo.replace('teh', 'the');
  await alice.getByLabel('Message', { exact: true }).fill(typo);
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.in .text', { hasText: typo }).waitFor({ timeout: 10000 });

  // Bob's toolbar on Alice's message offers no Edit or Delete: it is not his.
  const theirs = bob.locator('.msg.in', { hasText: typo });
  await theirs.hover();
  await bob.locator('.msg.in .tools').getByRole('button', { name: 'Reply' }).waitFor();
  assert.equal(await bob.locator('.msg.in .tools').getByRole('button', { name: 'Edit' }).isVisible(), false);

  // Alice fixes her typo: the composer takes the text, Enter saves it.
  await act(alice, typo, 'Edit');
  const composer = alice.getByLabel('Message', { exact: true });
  assert.equal(await composer.inputValue(), typo);
  await alice.locator('.context', { hasText: 'Editing your message' }).waitFor();
  await composer.fill(fixed);
  await composer.press('Enter');
  await bob.locator('.msg.in .text', { hasText: fixed }).waitFor({ timeout: 10000 });
  await bob.locator('.msg.in .edited').waitFor();
  assert.equal(await alice.locator('.msg.out .text').last().textContent(), fixed);
  await until(bob, (text) => window.updates.some((m) => m.text === text && m.editedAt > 0), fixed, { what: 'the edit event' });

  // Bob reacts with a thumbs-up: Alice sees it counted; his second press takes it back.
  await act(bob, fixed, 'React 👍');
  const chip = alice.locator('.msg.out .reaction', { hasText: '👍' });
  await chip.waitFor({ timeout: 10000 });
  assert.equal(await chip.textContent(), '👍 1');
  assert.equal(await chip.getAttribute('title'), 'Bob Brown');
  assert.equal(await bob.locator('.msg.in .reaction').getAttribute('aria-pressed'), 'true');
  await bob.locator('.msg.in .reaction', { hasText: '👍' }).click();
  await chip.waitFor({ state: 'detached', timeout: 10000 });

  // Bob replies: his message quotes Alice's, and the quote leads back to it.
  await act(bob, fixed, 'Reply');
  await bob.locator('.context', { hasText: `Replying to Alice Adams: ${fixed}` }).waitFor();
  await bob.getByLabel('Message', { exact: true }).fill('On my way');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  const quote = alice.locator('.msg.in .quote');
  await quote.waitFor({ timeout: 10000 });
  assert.equal(await quote.textContent(), `Alice Adams: ${fixed}`);
  await quote.click();
  assert.equal(await alice.evaluate(() => document.querySelector('#messenger').shadowRoot.activeElement?.dataset.message),
    (await alice.evaluate((id) => window.client.threadMessages(id), threadId))[0].id);
  await alice.screenshot({ path: join(artifacts, 'changes-alice.png') });
  await bob.screenshot({ path: join(artifacts, 'changes-bob.png') });

  // Alice deletes her message for everyone, after saying so in a dialog.
  await act(alice, fixed, 'Delete');
  await alice.getByRole('button', { name: 'Delete for everyone' }).click();
  await bob.locator('.msg.in.gone .text', { hasText: 'Message deleted' }).waitFor({ timeout: 10000 });
  // Bob's reply quotes what is left of it: nothing.
  await bob.locator('.msg.out .quote', { hasText: 'Alice Adams: Message deleted' }).waitFor();
  const kept = await bob.evaluate((id) => window.client.threadMessages(id), threadId);
  assert.equal(kept[0].deleted, true);
  assert.equal(kept[0].text, '');
  assert.equal(await bob.locator('.msg', { hasText: fixed }).count(), 0);
  // A deleted message has no actions left.
  await bob.locator('.msg.in.gone').hover();
  assert.equal(await bob.locator('.msg.in.gone .tools').count(), 0);

  const stored = databaseText(env.server.db);
  for (const text of [typo, fixed, 'On my way']) {
    assert.ok(!stored.includes(text), `the database holds plaintext: ${text}`);
  }
});

test('the page API: changes, replies and mentions, and what a non-sender may not do', async (t) => {
  const { alice, bob, threadId } = await aliceAndBob(t);
  const first = await alice.evaluate((id) => window.client.threadSendMessage(id, 'first draft'), threadId);
  await until(bob, (id) => window.arrived.some((m) => m.id === id), first, { what: 'the first message' });

  // Bob cannot edit or delete Alice's message; bad input is refused with a code.
  const refused = await bob.evaluate(async ([id, msg]) => {
    const codes = [];
    for (const call of [
      () => window.client.threadMessageEdit(id, msg, 'Bob was here'),
      () => window.client.threadMessageDelete(id, msg),
      () => window.client.threadMessageReact(id, msg, 'not one emoji'),
      () => window.client.threadMessageEdit(id, 'no-such-message', 'x'),
      () => window.client.threadSendMessage(id, 'answer', null, null, null, { replyTo: 'no-such-message' }),
    ]) {
      try {
        await call();
        codes.push('resolved');
      } catch (e) {
        codes.push(e.code);
      }
    }
    return codes;
  }, [threadId, first]);
  assert.deepEqual(refused, ['not_sender', 'not_sender', 'bad_reaction', 'unknown_message', 'unknown_message']);
  const empty = await alice.evaluate(([id, msg]) => window.client.threadMessageEdit(id, msg, '  ').catch((e) => e.code), [threadId, first]);
  assert.equal(empty, 'empty_message');

  // Alice edits; the promise gives the message as edited, and Bob's page hears of it.
  const edited = await alice.evaluate(([id, msg]) => window.client.threadMessageEdit(id, msg, 'final text'), [threadId, first]);
  assert.equal(edited.text, 'final text');
  assert.ok(edited.editedAt > 0);
  await until(bob, (msg) => window.updates.some((m) => m.id === msg && m.text === 'final text'), first, { what: 'the edit' });

  // Reactions: one per person; another emoji replaces it; both people's are counted.
  await bob.evaluate(([id, msg]) => window.client.threadMessageReact(id, msg, '🎉'), [threadId, first]);
  await bob.evaluate(([id, msg]) => window.client.threadMessageReact(id, msg, '❤️'), [threadId, first]);
  await alice.evaluate(([id, msg]) => window.client.threadMessageReact(id, msg, '❤️'), [threadId, first]);
  await until(alice, ([id, msg]) => window.client.threadMessages(id).then((ms) => {
    const r = ms.find((m) => m.id === msg).reactions || [];
    return r.length === 2 && r.every((x) => x.emoji === '❤️');
  }), [threadId, first], { what: 'two hearts' });
  await until(bob, ([id, msg]) => window.client.threadMessages(id).then((ms) => (ms.find((m) => m.id === msg).reactions || []).length === 2), [threadId, first], { what: 'two reactions at Bob' });

  // A reply names its message, and a mention of Alice flags the message for her.
  const reply = await bob.evaluate(([id, msg]) => window.client.threadSendMessage(id, 'thanks @alice, see above', null, null, null, { replyTo: msg }), [threadId, first]);
  await until(alice, (id) => window.arrived.some((m) => m.id === id), reply, { what: 'the reply' });
  const heard = await alice.evaluate((id) => window.arrived.find((m) => m.id === id), reply);
  assert.equal(heard.replyTo, first);
  assert.equal(heard.mentioned, true);
  assert.deepEqual(heard.mentions.length, 1);
  await alice.locator('.msg.in.mention', { hasText: 'thanks @alice' }).waitFor();
  const own = await bob.evaluate((id) => window.client.threadMessages(id).then((ms) => ms.at(-1)), threadId);
  assert.ok(!own.mentioned, 'Bob did not mention himself');

  // Delete for everyone drops the text and the reactions on both sides, and is final.
  await alice.evaluate(([id, msg]) => window.client.threadMessageDelete(id, msg), [threadId, first]);
  await until(bob, ([id, msg]) => window.client.threadMessages(id).then((ms) => {
    const m = ms.find((x) => x.id === msg);
    return m.deleted && m.text === '' && !m.reactions;
  }), [threadId, first], { what: 'the deletion at Bob' });
  const again = await alice.evaluate(([id, msg]) => window.client.threadMessageEdit(id, msg, 'back').catch((e) => e.code), [threadId, first]);
  assert.equal(again, 'message_deleted');

  // After a reload, Bob's history still has every change.
  await bob.reload();
  await bob.locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  const after = await bob.evaluate((id) => window.client.threadMessages(id), threadId);
  assert.equal(after[0].deleted, true);
  assert.equal(after[1].replyTo, first);
});

test('unread counts: unreadchange per thread and in total, and markRead', async (t) => {
  const { alice, bob } = await signedIn(t);
  await bob.evaluate(() => {
    window.unread = [];
    window.client.addEventListener('unreadchange', (e) => window.unread.push(e.detail));
  });
  const threadId = await alice.evaluate(() => window.client.threadMake('@bob'));
  for (const text of ['one', 'two']) {
    await alice.evaluate(([id, text]) => window.client.threadSendMessage(id, text), [threadId, text]);
  }
  // Bob has no thread open: both count, in the thread and in total.
  await until(bob, () => window.unread.at(-1)?.total === 2, null, { what: 'two unread' });
  assert.deepEqual(await bob.evaluate(() => window.unread.at(-1)), { total: 2, threads: { [threadId]: 2 } });
  assert.equal(await bob.locator('.thread-item .unread').textContent(), '2');
  await bob.evaluate((id) => window.client.markRead(id), threadId);
  await until(bob, () => window.unread.at(-1)?.total === 0, null, { what: 'nothing unread' });
  assert.deepEqual(await bob.evaluate(() => window.unread.at(-1)), { total: 0, threads: {} });
  assert.equal(await bob.locator('.thread-item .unread').count(), 0);
  const marks = await alice.evaluate((id) => window.client.threadList().then((ts) => ts.find((t) => t.id === id).unread), threadId);
  assert.equal(marks, 0, 'her own messages are never unread for her');
});

test('a deletion that comes before its message still deletes it', async (t) => {
  const alice = await newPage(env.browser);
  const bob = await newPage(env.browser);
  t.after(() => {
    if (t.error) console.log('alice:', alice.log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  // The relay, played in Bob's page, holds back the first envelope it has for him until it
  // has handed over the next: Alice's deletion comes before her message.
  let held = null;
  await bob.routeWebSocket('**/v1/ws', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      const frame = JSON.parse(m);
      if (frame.type === 'envelope' && held === null) {
        held = m;
        return;
      }
      ws.send(m);
      if (frame.type === 'envelope' && held !== 'sent') {
        const first = held;
        setTimeout(() => ws.send(first), 500);
        held = 'sent';
      }
    });
  });
  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(alice, env.server.base, 'alice');
  const secret = 'sent by mistake ' + Math.random().toString(36).slice(2);
  const [threadId, messageId] = await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    return [id, await window.client.threadSendMessage(id, text)];
  }, secret);
  await alice.evaluate(([id, m]) => window.client.threadMessageDelete(id, m), [threadId, messageId]);
  await until(bob, async () => (await window.client.threadList()).length === 1, null, { what: 'the thread' });
  await until(bob, async (id) => {
    const [m] = await window.client.threadMessages(id);
    return m?.deleted === true;
  }, threadId, { what: 'the message, deleted' });
  assert.equal(held, 'sent', 'the message came after its deletion');
  const [m] = await bob.evaluate((id) => window.client.threadMessages(id), threadId);
  assert.equal(m.text, '');
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click();
  await bob.locator('.msg.gone', { hasText: 'Message deleted' }).waitFor();
  assert.equal(await bob.locator('.msg', { hasText: secret }).count(), 0);
});
