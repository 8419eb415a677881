// One person, several tabs of one browser: only one tab at a time holds the account (a Web
// Lock), so no ratchet key ever encrypts two messages. The other tabs are views over it:
// they show the same threads, and what their page and UI do is done by the holder. When
// the holder closes another tab takes over with the stored state, and nothing is lost or
// received twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { useServerAndBrowser, newPage, openDemoAs, waitConnected, artifacts, until } from './harness.mjs';

const env = useServerAndBrowser();

/** Every pairwise ratchet header (recipient device, ratchet key, counters) a page sends,
 * over its socket or over HTTP. */
function recordRatchetHeaders(page, seen) {
  const parse = (json) => {
    try {
      return JSON.parse(json);
    } catch {
      return null;
    }
  };
  page.on('websocket', (ws) =>
    ws.on('framesent', ({ payload }) => {
      const frame = parse(payload);
      if (frame?.type === 'send') record(frame.request.envelopes, seen);
    }),
  );
  page.on('request', (req) => {
    if (req.method() === 'POST' && req.url().endsWith('/v1/envelopes')) {
      const body = parse(req.postData());
      if (body) record(body.envelopes, seen);
    }
  });
}

function record(envelopes, seen) {
  for (const env of envelopes) {
    const bytes = Buffer.from(env.payload, 'base64');
    // version (2) then parts: kind (1), length (4, big-endian), bytes.
    for (let at = 2; at < bytes.length; ) {
      const kind = bytes[at];
      const len = bytes.readUInt32BE(at + 1);
      const part = bytes.subarray(at + 5, at + 5 + len);
      at += 5 + len;
      if (kind !== 1 && kind !== 2) continue;
      const message = kind === 1 ? part.subarray(105) : part;
      const header = `${env.device_id}/${message.subarray(0, 40).toString('hex')}`;
      const ciphertexts = seen.get(header) ?? new Set();
      ciphertexts.add(message.toString('hex'));
      seen.set(header, ciphertexts);
    }
  }
}

/** Waits until `locator` matches at least `n` elements. */
async function atLeast(locator, n, what) {
  const deadline = Date.now() + 15000;
  while ((await locator.count()) < n) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what} (${await locator.count()} of ${n})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const texts = (page, threadId) =>
  page.evaluate(async (id) => {
    id ??= (await window.client.threadList())[0].id;
    return (await window.client.threadMessages(id)).map((m) => `${m.outgoing ? '>' : '<'} ${m.text}`);
  }, threadId);

test('a second tab of the same person waits, then takes over without losing or repeating anything', async (t) => {
  const bob = await newPage(env.browser);
  const context = await env.browser.newContext({ viewport: { width: 480, height: 640 } });
  const tab1 = await context.newPage();
  const tab2 = await context.newPage();
  const log = [];
  for (const p of [tab1, tab2]) p.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  t.after(() => {
    if (t.error) console.log(log.join('\n'), '\nbob:', bob.log.join('\n'));
  });
  const headers = new Map();
  recordRatchetHeaders(tab1, headers);
  recordRatchetHeaders(tab2, headers);

  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(tab1, env.server.base, 'alice');
  await tab2.goto(`${env.server.base}/?as=alice`);
  await tab2.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });
  await tab2.screenshot({ path: join(artifacts, 'tabs-second-tab-waits.png') });

  const send = async (page, text) => {
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.getByLabel('Message', { exact: true }).press('Enter');
    await page.locator('.msg.out .text', { hasText: text }).waitFor();
  };
  await tab1.getByLabel('New thread: who to talk to').fill('@bob');
  await tab1.getByRole('button', { name: 'Start' }).click();
  await tab1.locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();
  for (const n of [1, 2, 3]) await send(tab1, `from tab one ${n}`);
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 10000 });
  await bob.locator('.msg.in .text', { hasText: 'from tab one 3' }).waitFor({ timeout: 10000 });
  await send(bob, 'reply one');
  await tab1.locator('.msg.in .text', { hasText: 'reply one' }).waitFor({ timeout: 10000 });

  // The first tab closes mid-conversation; Bob writes while no tab of Alice's is on line.
  await tab1.close();
  await send(bob, 'reply two');
  await waitConnected(tab2);
  await tab2.locator('.thread-item', { hasText: 'Bob Brown' }).click();
  await tab2.locator('.msg.in .text', { hasText: 'reply two' }).waitFor({ timeout: 10000 });
  for (const n of [1, 2]) await send(tab2, `from tab two ${n}`);
  await bob.locator('.msg.in .text', { hasText: 'from tab two 2' }).waitFor({ timeout: 10000 });
  await send(bob, 'reply three');
  await tab2.locator('.msg.in .text', { hasText: 'reply three' }).waitFor({ timeout: 10000 });
  await tab2.screenshot({ path: join(artifacts, 'tabs-second-tab-took-over.png') });

  const expected = [
    '> from tab one 1', '> from tab one 2', '> from tab one 3', '< reply one', '< reply two',
    '> from tab two 1', '> from tab two 2', '< reply three',
  ];
  assert.deepEqual(await texts(tab2), expected, 'the second tab has everything, once');
  const flip = (s) => (s[0] === '>' ? '<' : '>') + s.slice(1);
  assert.deepEqual(await texts(bob), expected.map(flip), 'Bob received each message exactly once');

  assert.ok(headers.size >= 5, `ratchet headers were recorded (${headers.size})`);
  for (const [header, ciphertexts] of headers) {
    assert.equal(ciphertexts.size, 1, `ratchet header ${header} was used for two ciphertexts`);
  }
  await context.close();
});

test('three tabs of one person send interleaved messages; each shows all, the other person gets each once', async (t) => {
  const bob = await newPage(env.browser);
  const context = await env.browser.newContext({ viewport: { width: 480, height: 640 } });
  const tabs = [await context.newPage(), await context.newPage(), await context.newPage()];
  const log = [];
  tabs.forEach((p, i) => p.on('console', (m) => log.push(`[tab${i + 1} ${m.type()}] ${m.text()}`)));
  t.after(async () => {
    if (!t.error) return;
    console.log(log.join('\n'), '\nbob:', bob.log.join('\n'));
    for (const [i, p] of tabs.entries()) if (!p.isClosed()) await p.screenshot({ path: join(artifacts, `tabs-failed-${i + 1}.png`) });
  });
  const headers = new Map();
  for (const p of tabs) recordRatchetHeaders(p, headers);

  await openDemoAs(bob, env.server.base, 'bob');
  await openDemoAs(tabs[0], env.server.base, 'alice');
  for (const p of tabs.slice(1)) {
    await p.goto(`${env.server.base}/?as=alice`);
    await p.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });
    // Events the holder hears reach every tab's page.
    await p.evaluate(() => {
      window.heard = [];
      window.client.addEventListener('thread-message', (e) => window.heard.push(e.detail.text));
    });
  }

  // A view's UI starts the thread: the holder makes it, and the view opens it.
  await tabs[1].getByLabel('New thread: who to talk to').fill('@bob');
  await tabs[1].getByRole('button', { name: 'Start' }).click();
  await tabs[1].locator('.thread-title', { hasText: 'Bob Brown' }).waitFor({ timeout: 10000 });
  const threadId = await tabs[2].evaluate(async () => (await window.client.threadList())[0].id);
  await tabs[0].locator('.thread-item', { hasText: 'Bob Brown' }).click({ timeout: 10000 });
  await tabs[2].locator('.thread-item', { hasText: 'Bob Brown' }).click({ timeout: 10000 });

  // Each round, all three tabs send at once: the holder by API, one view by its composer,
  // the other view by API.
  const sent = [];
  const round = async (label, senders) => {
    await Promise.all(senders.map(async ({ page, how }, i) => {
      const text = `${label} from tab ${tabs.indexOf(page) + 1} (${how}) #${i}`;
      sent.push(text);
      if (how === 'ui') {
        await page.getByLabel('Message', { exact: true }).fill(text);
        await page.getByLabel('Message', { exact: true }).press('Enter');
      } else {
        const id = await page.evaluate(([thread, body]) => window.client.threadSendMessage(thread, body), [threadId, text]);
        assert.match(id, /\S/, 'a forwarded send resolves to the message ID');
      }
    }));
  };
  for (const n of [1, 2, 3]) {
    await round(`round ${n}`, [
      { page: tabs[0], how: 'api' }, { page: tabs[1], how: 'ui' }, { page: tabs[2], how: 'api' },
    ]);
  }
  await bob.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 10000 });
  const bobTexts = () => bob.evaluate(async () => {
    const [thread] = await window.client.threadList();
    return (await window.client.threadMessages(thread.id)).map((m) => m.text);
  });
  await atLeast(bob.locator('.msg.in'), sent.length, 'Bob has every message');
  await bob.getByLabel('Message', { exact: true }).fill('reply from bob');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  for (const p of tabs) {
    await p.locator('.msg.in .text', { hasText: 'reply from bob' }).waitFor({ timeout: 10000 });
  }
  for (const p of tabs.slice(1)) {
    await until(p, () => window.heard.includes('reply from bob'), undefined, { what: 'a view heard the reply' });
  }
  await tabs[1].screenshot({ path: join(artifacts, 'tabs-view-sends.png') });

  // Every tab shows every message, in one order (the holder's), on screen and by API.
  const first = await texts(tabs[0], threadId);
  assert.equal(first.length, sent.length + 1);
  for (const p of tabs) {
    assert.deepEqual(await texts(p, threadId), first, 'each tab lists the same messages by API');
    await atLeast(p.locator('.msg .text'), first.length, 'each tab shows every message');
    const shown = await p.locator('.msg .text').allTextContents();
    assert.deepEqual(shown, first.map((m) => m.slice(2)), 'each tab shows the messages in the same order');
  }

  // A view's UI attaches a file, and the other view's downloads it.
  const chooser = tabs[2].waitForEvent('filechooser');
  await tabs[2].getByRole('button', { name: 'Attach files' }).click();
  await (await chooser).setFiles({ name: 'plan.txt', mimeType: 'text/plain', buffer: Buffer.from('attached in a view') });
  await tabs[2].getByRole('button', { name: 'Send' }).click();
  const link = tabs[1].getByRole('button', { name: 'Download plan.txt' });
  await link.waitFor({ timeout: 10000 });
  const download = tabs[1].waitForEvent('download');
  await link.click();
  assert.equal(readFileSync(await (await download).path(), 'utf8'), 'attached in a view');
  await bob.locator('.msg.in .attachment', { hasText: 'plan.txt' }).waitFor({ timeout: 10000 });
  // A view's API opens threads in its own UI, not in the holder's.
  await tabs[2].evaluate(() => window.client.threadStartWithExpression('@carol'));
  await tabs[2].locator('.thread-title', { hasText: 'Carol' }).waitFor({ timeout: 10000 });
  assert.match(await tabs[0].locator('.thread-title').textContent(), /Bob Brown/);
  await tabs[2].evaluate((id) => window.client.threadOpen(id), threadId);
  await tabs[2].locator('.thread-title', { hasText: 'Bob Brown' }).waitFor();

  // The holder closes mid-conversation: one view takes over, the other keeps forwarding.
  await tabs[0].close();
  const later = [];
  for (const n of [4, 5]) {
    for (const p of [tabs[1], tabs[2]]) {
      const text = `after close ${n} from tab ${tabs.indexOf(p) + 1}`;
      later.push(text);
      await p.evaluate(([thread, body]) => window.client.threadSendMessage(thread, body), [threadId, text]);
    }
  }
  await atLeast(bob.locator('.msg.in'), sent.length + later.length, 'Bob has the later messages');
  await bob.getByLabel('Message', { exact: true }).fill('second reply');
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  for (const p of [tabs[1], tabs[2]]) {
    await p.locator('.msg.in .text', { hasText: 'second reply' }).waitFor({ timeout: 15000 });
  }

  const all = [...sent, ...later];
  const got = await bobTexts();
  for (const text of all) {
    assert.equal(got.filter((x) => x === text).length, 1, `Bob received "${text}" exactly once`);
  }
  assert.equal(got.length, all.length + 3, 'Bob has nothing else (his two replies, the file)');
  const a = await texts(tabs[1], threadId);
  assert.deepEqual(await texts(tabs[2], threadId), a, 'both remaining tabs list the same');
  assert.equal(a.length, all.length + 3);
  for (const p of [tabs[1], tabs[2]]) {
    await atLeast(p.locator('.msg .text, .msg .attachment'), a.length, 'each remaining tab shows every message');
  }

  assert.ok(headers.size >= all.length, `ratchet headers were recorded (${headers.size})`);
  for (const [header, ciphertexts] of headers) {
    assert.equal(ciphertexts.size, 1, `ratchet header ${header} was used for two ciphertexts`);
  }
  await context.close();
});

// Carol: the other tests here set up Alice's key already, so Alice would be asked how to set
// up this browser.
test('two clients of one person on one page: the second is a view, and takes over when the first goes', async () => {
  const page = await newPage(env.browser, { width: 1200, height: 700 });
  const bob = await newPage(env.browser);
  await openDemoAs(bob, env.server.base, 'bob');
  await page.goto(`${env.server.base}/`);
  await page.evaluate(async () => {
    // Which channels the clients open, so the test can post on them as another script would.
    window.channels = [];
    const Real = window.BroadcastChannel;
    window.BroadcastChannel = class extends Real {
      constructor(name) {
        super(name);
        window.channels.push(name);
      }
    };
    const jwt = (await (await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol' }) })).json()).jwt;
    document.getElementById('choose').hidden = true;
    const box = document.getElementById('messenger');
    box.style.display = 'flex';
    box.style.maxWidth = 'none';
    window.clients = [];
    window.waiting = [];
    for (const n of [0, 1]) {
      const el = document.createElement('div');
      el.id = `pane-${n}`;
      el.style.flex = '1';
      box.appendChild(el);
      const client = new sotto.Client(el, { jwt });
      client.addEventListener('tabwaiting', () => window.waiting.push(n));
      window.clients.push(client);
      // The first holds the account before the second starts.
      if (n === 0) await new Promise((resolve) => client.addEventListener('loaded', resolve, { once: true }));
    }
  });
  const panes = [page.locator('#pane-0'), page.locator('#pane-1')];
  await panes[1].locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });
  assert.deepEqual(await page.evaluate(() => window.waiting), [1], 'only the second client waits');

  const threadId = await page.evaluate(() => window.clients[1].threadMake('@bob'));
  await page.evaluate((id) => window.clients[1].threadSendMessage(id, 'sent by the view'), threadId);
  await panes[0].locator('.thread-item', { hasText: 'Bob Brown' }).click();
  await panes[0].locator('.msg.out .text', { hasText: 'sent by the view' }).waitFor({ timeout: 10000 });
  await bob.locator('.thread-item', { hasText: 'Carol' }).click({ timeout: 10000 });
  await bob.locator('.msg.in .text', { hasText: 'sent by the view' }).waitFor({ timeout: 10000 });
  // The holder's typed errors reach the view's page as they are.
  const refused = await page.evaluate(() => window.clients[1].threadSendMessage('no-such-thread', 'x').then(() => 'sent', (e) => e.code));
  assert.equal(refused, 'unknown_thread');

  // Another script of the origin posts forged and garbage messages on both channels: the
  // holder runs nothing outside the page API, a forged answer to a view's call is ignored,
  // and both clients carry on.
  const forged = await page.evaluate(async (id) => {
    const account = window.channels.find((n) => n.startsWith('sotto-tabs|'));
    const tabs = new BroadcastChannel(account);
    const origin = new BroadcastChannel('sotto');
    const answers = [];
    tabs.onmessage = (e) => {
      answers.push(e.data);
      // Answers every call at once, without having taken it.
      if (e.data?.t === 'call') tabs.postMessage({ t: 'done', to: e.data.from, id: e.data.id, from: 'forger', value: 'forged' });
    };
    for (const junk of [null, 42, 'text', { t: 'nonsense' }, { t: 'call' }, { t: 'call', id: 1, method: 'threadList', args: 'x' }]) tabs.postMessage(junk);
    tabs.postMessage({ t: 'call', id: 7, from: 'forger', method: 'destroy', args: [] });
    origin.postMessage(`marks ${account.slice('sotto-tabs|sotto-account|'.length)}\n{not json`);
    origin.postMessage('saved nobody');
    // A view's send, which the forger answers long before the holder can.
    const sentId = await window.clients[1].threadSendMessage(id, 'after the forgeries');
    const ids = (await window.clients[1].threadMessages(id)).map((m) => m.id);
    await new Promise((r) => setTimeout(r, 300));
    const refused = answers.find((m) => m.t === 'failed' && m.to === 'forger');
    tabs.close();
    origin.close();
    return { refused: refused?.code, sentId, real: ids.includes(sentId) };
  }, threadId);
  assert.equal(forged.refused, 'bad_argument', 'a call outside the page API is refused');
  assert.notEqual(forged.sentId, 'forged');
  assert.equal(forged.real, true, "the view got the holder's answer, not the forgery");
  await bob.locator('.msg.in .text', { hasText: 'after the forgeries' }).waitFor({ timeout: 10000 });

  // A view given a new token keeps it for when it takes over, and stays a view.
  await page.evaluate(async () => {
    const jwt = (await (await fetch('/demo/jwt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'carol' }) })).json()).jwt;
    await window.clients[1].setIdentityToken(jwt);
  });
  assert.deepEqual(await page.evaluate(() => window.waiting), [1], 'a new token does not make the view wait again');

  await page.evaluate(() => window.clients[0].destroy());
  await panes[1].locator('.status[data-connected="true"]').waitFor({ timeout: 15000 });
  await page.evaluate((id) => window.clients[1].threadSendMessage(id, 'sent after the first went'), threadId);
  await bob.locator('.msg.in .text', { hasText: 'sent after the first went' }).waitFor({ timeout: 10000 });
  await panes[1].locator('.thread-item', { hasText: 'Bob Brown' }).click();
  assert.deepEqual(await panes[1].locator('.msg .text').allTextContents(), ['sent by the view', 'after the forgeries', 'sent after the first went']);
  await page.context().close();
  await bob.context().close();
});

test('a view that reads a thread sends the read mark; a call its holder took and never answered fails with tab_closed', async (t) => {
  const alice = await newPage(env.browser);
  const context = await env.browser.newContext({ viewport: { width: 480, height: 640 } });
  const holder = await context.newPage();
  const view = await context.newPage();
  const log = [];
  for (const p of [holder, view]) p.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  t.after(() => {
    if (t.error) console.log(log.join('\n'), '\nalice:', alice.log.join('\n'));
  });
  await openDemoAs(alice, env.server.base, 'alice');
  await openDemoAs(holder, env.server.base, 'bob');
  await view.goto(`${env.server.base}/?as=bob`);
  await view.locator('.status', { hasText: 'Open in another tab' }).waitFor({ timeout: 15000 });

  // Alice writes; Bob reads it in his second tab alone (the holder has no thread open).
  const question = 'are you reading this? ' + Math.random().toString(36).slice(2);
  await alice.evaluate(async (text) => {
    const id = await window.client.threadEnsure('@bob');
    await window.client.threadSendMessage(id, text);
  }, question);
  await alice.locator('.thread-item', { hasText: 'Bob Brown' }).click({ timeout: 15000 });
  await view.locator('.thread-item', { hasText: 'Alice Adams' }).click({ timeout: 15000 });
  await view.locator('.msg.in .text', { hasText: question }).waitFor({ timeout: 15000 });
  await alice.locator('.msg.out', { hasText: question }).locator('.state', { hasText: 'Read' })
    .waitFor({ timeout: 15000 });

  // The holder takes the view's next send, does it, and hangs before it answers.
  const threadId = await view.evaluate(async () => (await window.client.threadList())[0].id);
  await holder.evaluate(() => {
    const post = BroadcastChannel.prototype.postMessage;
    BroadcastChannel.prototype.postMessage = function (m) {
      if (m?.t !== 'done') post.call(this, m);
    };
  });
  const once = 'sent exactly once ' + Math.random().toString(36).slice(2);
  await view.evaluate(([id, text]) => {
    window.sending = window.client.threadSendMessage(id, text).then(() => 'sent', (e) => e.code);
  }, [threadId, once]);
  await alice.locator('.msg.in .text', { hasText: once }).waitFor({ timeout: 15000 });
  await holder.close();
  // The view takes over: it cannot know whether the holder sent it, so it says so rather
  // than send it again.
  assert.equal(await view.evaluate(() => window.sending), 'tab_closed');
  await waitConnected(view);
  await view.waitForTimeout(1000);
  assert.equal(await alice.locator('.msg.in .text', { hasText: once }).count(), 1, 'Alice got it once');
  await context.close();
});
