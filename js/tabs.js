// One account, many tabs. One tab at a time holds a person's account (a Web Lock, see
// src/tab_lock.rs): it alone keeps the ratchets, the socket and the stored state. Every
// other Sotto client of that person in this browser (another tab, or a second client on
// the same page) is a view: its page's calls travel to the holder over a BroadcastChannel
// named after the account and are answered from there, and the holder repeats its events
// to the views. The wasm of a view shows the history the holder saves (src/client/tab_view.rs).
//
// Messages on the channel, each with the sending tab's `from`:
//   view → holder: {t: 'who'} (who holds this account?), {t: 'call', id, method, args}
//   holder → views: {t: 'lead'} (I hold it), {t: 'took', to, id} (the call is running
//     here), {t: 'done', to, id, value} or {t: 'failed', to, id, code, message},
//     {t: 'event', type, detail}
// A call that no holder took is sent again to the next holder (or, when this tab becomes
// the holder, run here); one that a holder took but never answered may or may not have
// happened, so it fails with `tab_closed` rather than run twice.

// What a view may ask of the holder: the page API, less what concerns one tab alone (its
// own UI, its own token, destroy).
const FORWARDED = new Set([
  'keyBackupExport', 'safetyNumber', 'markVerified', 'acknowledgeIdentityChange',
  'linkApprove', 'linkDecline', 'clearSession', 'threadMake', 'threadEnsure',
  'threadSendMessage', 'threadMessageEdit', 'threadMessageDelete', 'threadMessageReact',
  // What those three call in the holder's wasm.
  'threadMessageChange',
  'threadMarkRead', 'threadTyping', 'attachmentGet', 'threadList', 'search',
  'threadMessages', 'threadListAttributes', 'threadGetAttribute', 'threadSetAttribute',
  'threadSetExpiration', 'threadAmendDistribution', 'threadRepealDistribution',
  'threadAddMember', 'threadRemoveMember', 'threadLeave', 'threadArchive', 'threadRestore',
  'threadExpunge', 'threadDestroyMessages',
]);

// Events about the account (not about one tab), which every view hears too.
const SHARED_EVENTS = new Set([
  'thread-message', 'thread-message-update', 'thread-message-readmark', 'identitychange',
  'devicechange',
  'linkrequest', 'linkcode',
]);

// Calls already taken by this holder, so a call sent twice (to a holder that was still
// starting) runs once.
const TAKEN_KEPT = 1000;

// Errors are client.js's codedError (the two files are one script body, tabs.js first).
class AccountTabs {
  #tab = crypto.randomUUID();
  #channel;
  #holding = false;
  #run;
  #hear;
  #pending = new Map();
  #taken = new Set();
  #next = 0;

  /**
   * `run(method, args)` does a forwarded call when this tab holds the account;
   * `hear(type, detail)` tells this tab's page an event of the holder's.
   */
  constructor(account, run, hear) {
    this.#run = run;
    this.#hear = hear;
    this.#channel = new BroadcastChannel(`sotto-tabs|${account}`);
    this.#channel.onmessage = (e) => this.#receive(e.data);
  }

  /** This tab waits for the account: ask who holds it (they answer `lead`). */
  view() {
    this.#holding = false;
    this.#post({ t: 'who' });
  }

  /**
   * This tab now holds the account. Calls it had forwarded that nobody took run here;
   * one the old holder took and never answered fails with `tab_closed`.
   */
  hold() {
    this.#holding = true;
    this.#post({ t: 'lead' });
    for (const [id, call] of this.#pending) {
      this.#pending.delete(id);
      if (call.holder) {
        call.reject(codedError('tab_closed', 'the tab that held this account closed before it answered; the call may not have been done'));
      } else {
        this.#run(call.method, call.args).then(call.resolve, call.reject);
      }
    }
  }

  /** A view's call, answered by the holder. */
  forward(method, args) {
    try {
      structuredClone(args);
    } catch {
      return Promise.reject(codedError('bad_argument', `${method}: an argument cannot be sent to the tab that holds the account`));
    }
    return new Promise((resolve, reject) => {
      const id = ++this.#next;
      this.#pending.set(id, { method, args, resolve, reject, holder: null, sentTo: null });
      this.#post({ t: 'call', id, method, args });
    });
  }

  /** The holder's event, for every view. */
  share(type, detail) {
    if (this.#holding && SHARED_EVENTS.has(type)) this.#post({ t: 'event', type, detail });
  }

  /** Stops: every unanswered call fails with `code` (a sign-out does what clearSession asked). */
  close(code, message) {
    this.#channel.close();
    for (const call of this.#pending.values()) {
      if (call.method === 'clearSession' && code === 'not_signed_in') call.resolve();
      else call.reject(codedError(code, message));
    }
    this.#pending.clear();
  }

  #post(message) {
    try {
      this.#channel.postMessage({ ...message, from: this.#tab });
    } catch (err) {
      // Only a value that cannot be copied to another tab gets here.
      if (message.t === 'done') {
        this.#post({ t: 'failed', to: message.to, id: message.id, code: 'internal', message: String(err) });
      }
    }
  }

  async #take({ from, id, method, args }) {
    const key = `${from} ${id}`;
    if (this.#taken.has(key)) return;
    this.#taken.add(key);
    if (this.#taken.size > TAKEN_KEPT) this.#taken.delete(this.#taken.values().next().value);
    this.#post({ t: 'took', to: from, id });
    try {
      if (!FORWARDED.has(method) || !Array.isArray(args)) {
        throw codedError('bad_argument', `${method} cannot be asked of another tab`);
      }
      this.#post({ t: 'done', to: from, id, value: await this.#run(method, args) });
    } catch (err) {
      this.#post({ t: 'failed', to: from, id, code: err?.code || 'internal', message: String(err?.message ?? err) });
    }
  }

  #receive(m) {
    if (!m || typeof m !== 'object') return;
    if (this.#holding) {
      if (m.t === 'who') this.#post({ t: 'lead' });
      else if (m.t === 'call') this.#take(m);
      return;
    }
    if (m.t === 'event') {
      this.#hear(m.type, m.detail);
    } else if (m.t === 'lead') {
      // A (new) holder: what no holder took goes to it, once.
      for (const [id, call] of this.#pending) {
        if (call.holder && call.holder !== m.from) {
          this.#pending.delete(id);
          call.reject(codedError('tab_closed', 'the tab that held this account closed before it answered; the call may not have been done'));
        } else if (!call.holder && call.sentTo !== m.from) {
          call.sentTo = m.from;
          this.#post({ t: 'call', id, method: call.method, args: call.args });
        }
      }
    } else if (m.to === this.#tab) {
      const call = this.#pending.get(m.id);
      if (!call) return;
      if (m.t === 'took') {
        call.holder = m.from;
      } else if ((m.t === 'done' || m.t === 'failed') && m.from === call.holder) {
        this.#pending.delete(m.id);
        if (m.t === 'done') call.resolve(m.value);
        else call.reject(codedError(m.code, m.message));
      }
    }
  }
}
