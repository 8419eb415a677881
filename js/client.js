// The JavaScript face of Sotto: `new sotto.Client(el, auth, options)`.
//
// This file is the shared body of pkg/sotto.js (ES module) and pkg/sotto.global.js (classic
// script); scripts/assemble-pkg.mjs wraps it and supplies:
//   __load()  initialises the wasm module once and resolves when it is ready;
//   __wasm    the module's exports (ClientCore);
//   __base    the URL this script was loaded from (the default server URL).
// Everything else happens in Rust (src/client/); this class only makes construction
// synchronous, turns callbacks into DOM events, keeps method calls waiting until loaded,
// and forwards them to the tab that holds the account when another does (js/tabs.js).

function codedError(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

// A sign-in link `page?externalAuthCode=JWT`: take the token, and take it out of the
// address bar (and so out of the history, bookmarks and shared screenshots) at once.
function takeExternalAuthCode() {
  const url = new URL(location.href);
  const code = url.searchParams.get('externalAuthCode');
  if (code === null) return null;
  url.searchParams.delete('externalAuthCode');
  history.replaceState(history.state, '', url);
  return code;
}

class Client extends EventTarget {
  #core = null;
  #ready;
  #started;
  #options;
  #destroyed = false;
  // The account's other tabs (js/tabs.js), once signed in; `#viewing` while another holds it.
  #tabs = null;
  #viewing = false;
  #becameView;
  #resolveView;
  // While this tab loads an account it has just taken: calls wait for `loaded`.
  #loading = null;
  #loaded = null;
  // Takes the unread count out of the document's title (with `titleUnread`).
  #untitle = null;
  // Notifications on screen, by message ID: each closes once its thread is read, its
  // message deleted, or this client signed out or destroyed.
  #notified = new Map();
  // The UI's language (js/i18n.js), and what undoes it at `destroy()`.
  #words;
  #unspeak = null;

  constructor(el, auth, options = {}) {
    super();
    if (!el || el.nodeType !== 1) {
      throw codedError('bad_element', 'new sotto.Client(el, auth, options): el must be an element');
    }
    options = options || {};
    let language;
    try {
      language = readLanguageOptions(options);
    } catch (err) {
      throw codedError('bad_option', err.message);
    }
    this.#options = { ...options, ...language, url: options.url || new URL(__base).origin };
    // Fetched beside the wasm: its words are ready before the wasm draws anything. Without
    // a UI, only notifications have words.
    const words = options.ui !== false || options.notifications
      ? loadTranslator(language)
      : Promise.resolve(makeTranslator(language.locale, language.strings));
    const fromUrl = takeExternalAuthCode();
    if (auth == null || (typeof auth === 'object' && Object.keys(auth).length === 0)) {
      auth = fromUrl === null ? {} : { externalAuthCode: fromUrl };
    }
    this.#becameView = new Promise((resolve) => { this.#resolveView = resolve; });
    this.#ready = Promise.all([__load(), words]).then(([, words]) => {
      if (this.#destroyed) throw codedError('destroyed', 'the client was destroyed before it loaded');
      this.#words = words;
      if (options.ui !== false) this.#speak(el);
      this.#core = new __wasm.ClientCore(el, auth, this.#options, (type, detail) => this.#emit(type, detail));
      this.#emit('init');
    });
    this.#started = this.#ready.then(() => this.#core.start());
    this.#notifyWhenHidden(options);
    // A failed start is reported as an `error` event; method calls then reject with their
    // own error (`not_signed_in`, or whatever they meet).
    this.#started.catch((err) => this.#emit('error', err));
  }

  // The UI in the page's language (js/i18n.js): its words translated as the wasm draws them
  // into the shadow root (made here, before the wasm starts), and `lang` and `dir` on the
  // element unless the page set them.
  #speak(el) {
    let root = el.shadowRoot;
    try {
      root ??= el.attachShadow({ mode: 'open' });
    } catch {
      // An element that cannot hold one: the wasm says so when it starts.
      return;
    }
    // Images in the thread (js/previews.js), and the words.
    const stops = [showPreviews(root, this)];
    if (!this.#words.empty) stops.push(translateUi(root, this.#words));
    if (this.#words.locale && this.#words.speaks) {
      for (const [name, value] of [['lang', this.#words.locale], ['dir', this.#words.rtl ? 'rtl' : 'ltr']]) {
        if (el.hasAttribute(name)) continue;
        el.setAttribute(name, value);
        stops.push(() => el.getAttribute(name) === value && el.removeAttribute(name));
      }
    }
    this.#unspeak = () => stops.forEach((stop) => stop());
  }

  // Notifications for messages that arrive while the page is hidden (with `notifications`
  // and the site's permission; Sotto never asks for it itself), and the unread count in
  // the document's title (with `titleUnread`).
  #notifyWhenHidden({ notifications, titleUnread }) {
    if (notifications && typeof Notification !== 'undefined') {
      this.addEventListener('thread-message', ({ detail: m }) => {
        if (m.outgoing || m.deleted || document.visibilityState !== 'hidden' || Notification.permission !== 'granted') return;
        const preview = notifications.preview !== false;
        const text = m.text || (m.attachments?.length ? this.#words.translate('Attachment') : '');
        let shown;
        try {
          shown = new Notification(m.senderName, {
            body: preview ? text.slice(0, 140) : this.#words.translate('New message'),
            // Every tab of the account hears the message: one tag makes them one notification.
            tag: `sotto-${m.id}`,
            silent: !notifications.sound,
          });
        } catch {
          // Browsers that only notify from a service worker (Chrome on Android).
          return;
        }
        shown.onclick = () => {
          window.focus();
          this.threadOpen(m.threadId).catch(() => {});
          shown.close();
        };
        shown.onclose = () => this.#notified.delete(m.id);
        this.#notified.set(m.id, { shown, threadId: m.threadId });
      });
      // Read here or on another device: nothing left to tell of in that thread.
      this.addEventListener('unreadchange', ({ detail }) => this.#unnotify(({ threadId }) => !detail.threads[threadId]));
      this.addEventListener('thread-message-update', ({ detail: m }) => {
        if (m.deleted) this.#unnotify((_, id) => id === m.id);
      });
      this.addEventListener('sessioncleared', () => this.#unnotify(() => true));
    }
    if (titleUnread) {
      const count = (total) => {
        const title = document.title.replace(/^\(\d+\) /, '');
        document.title = total > 0 ? `(${total}) ${title}` : title;
      };
      this.addEventListener('unreadchange', ({ detail }) => count(detail.total));
      // Signed out or gone: no count is left behind in the title.
      this.addEventListener('sessioncleared', () => count(0));
      this.#untitle = () => count(0);
    }
  }

  #emit(type, detail) {
    // From the wasm only: which account this tab views or holds, and a view's UI asking the
    // page API (so that it is forwarded like the page's own calls).
    if (type === '_view' || type === '_leader') return this.#joinTabs(detail, type === '_view');
    if (type === '_call') return FORWARDED.has(detail[0]) ? this[detail[0]](...detail.slice(1)) : undefined;
    if (type === '_released' || type === 'sessioncleared') this.#leaveTabs('not_signed_in', 'this tab is signed out');
    if (type === '_released') return undefined;
    if (type === 'loaded' || type === 'sessioncleared') this.#loaded?.();
    this.#tabs?.share(type, detail);
    this.dispatchEvent(new CustomEvent(type, { detail }));
    const hook = { init: this.#options.onInit, loaded: this.#options.onLoaded }[type];
    if (typeof hook === 'function') {
      try {
        hook(this);
      } catch (err) {
        console.error('sotto: the page\'s', type, 'callback threw', err);
      }
    }
  }

  #joinTabs(account, view) {
    if (this.#tabs?.account !== account) {
      this.#leaveTabs('tab_closed', 'this tab changed accounts');
      // Link answers may come while this tab's start waits for them (see #answer).
      const run = (method, args) => (method.startsWith('link') ? this.#answer(method, ...args) : this.#local(method, args));
      this.#tabs = new AccountTabs(account, run, (type, detail) => this.dispatchEvent(new CustomEvent(type, { detail })));
      this.#tabs.account = account;
    }
    this.#viewing = view;
    if (view) {
      this.#tabs.view();
      this.#resolveView();
      this.#emit('tabwaiting');
    } else {
      this.#loading = new Promise((resolve) => {
        this.#loaded = () => {
          this.#loading = null;
          resolve();
        };
      });
      this.#tabs.hold();
    }
  }

  #leaveTabs(code, message) {
    this.#loaded?.();
    const tabs = this.#tabs;
    this.#viewing = false;
    this.#tabs = null;
    // After the answers this tab is still sending (a view's clearSession, say) have gone.
    setTimeout(() => tabs?.close(code, message), 0);
  }

  async #local(method, args) {
    await this.#started.catch(() => {});
    await this.#loading;
    if (!this.#core) throw codedError('destroyed', 'this client has been destroyed');
    return this.#core[method](...args);
  }

  // Loaded, and either started or a view of another tab.
  async #settled() {
    await this.#ready;
    await Promise.race([this.#started.catch(() => {}), this.#becameView]);
  }

  // While another tab holds the account, the call is that tab's to answer.
  async #call(method, ...args) {
    await this.#settled();
    if (this.#viewing) return this.#tabs.forward(method, args);
    return this.#local(method, args);
  }

  /** Signs in with a JWT, or refreshes the session (also within the grace window). */
  async setIdentityToken(jwt) {
    if (typeof jwt !== 'string' || jwt === '') throw codedError('bad_token', 'setIdentityToken(jwt) needs a JWT string');
    await this.#ready;
    if (!this.#core) throw codedError('destroyed', 'this client has been destroyed');
    return this.#core.setIdentityToken(jwt);
  }

  // Provisioning and linking answers may come while start() still waits for them, so
  // they only wait for the module, not for the start.
  async #answer(method, ...args) {
    await this.#ready;
    if (!this.#core) throw codedError('destroyed', 'this client has been destroyed');
    return this.#core[method](...args);
  }

  /** Answers `provisioningrequired`: make a new key for this browser. */
  generateKey() {
    return this.#answer('generateKey');
  }

  /** Answers `provisioningrequired`: link this browser to one where the user is signed in. */
  importKeyFromRunningClient() {
    return this.#answer('importKeyFromRunningClient');
  }

  /** Answers provisioningrequired by restoring the identity from keyBackupExport's text. */
  keyBackupImport(backup, passphrase) {
    return this.#answer('keyBackupImport', String(backup ?? ''), String(passphrase ?? ''));
  }

  /** The user's identity encrypted under `passphrase`, as text to keep somewhere safe. */
  keyBackupExport(passphrase) {
    return this.#call('keyBackupExport', String(passphrase ?? ''));
  }

  /** The safety number of this user and `userId`: {userId, number, changed, verified}. */
  safetyNumber(userId) {
    return this.#call('safetyNumber', String(userId));
  }

  /** The person compared `number` (from safetyNumber) with `userId` and it matched. */
  markVerified(userId, number) {
    return this.#call('markVerified', String(userId), String(number ?? ''));
  }

  /** The person saw that `userId`'s key changed or that they have a new device: the note goes. */
  acknowledgeIdentityChange(userId) {
    return this.#call('acknowledgeIdentityChange', String(userId));
  }

  /** Approves a `linkrequest` (check its code against the new browser's first), or on the
   * new browser confirms that its `linkcode` matches. */
  linkApprove(id) {
    return this.#viewing ? this.#call('linkApprove', String(id)) : this.#answer('linkApprove', String(id));
  }

  /** Declines a `linkrequest`, or stops linking on the new browser. */
  linkDecline(id) {
    return this.#viewing ? this.#call('linkDecline', String(id)) : this.#answer('linkDecline', String(id));
  }

  /** Signs out every tab of this origin and removes this user's data from this browser. */
  clearSession() {
    return this.#call('clearSession');
  }

  /** Makes a thread with the users an expression names (and you); resolves to its ID. */
  threadMake(expr, attributes) {
    return this.#call('threadMake', String(expr), attributes);
  }

  /** The thread with exactly these members if there is one, else a new one; its ID. */
  threadEnsure(expr, attributes) {
    return this.#call('threadEnsure', String(expr), attributes);
  }

  /** Makes a thread and opens it; its ID. */
  async threadStartWithExpression(expr, attributes) {
    await this.#settled();
    if (!this.#viewing) return this.#call('threadStartWithExpression', String(expr), attributes);
    // In a view, the holder makes it and this tab's UI opens it.
    const id = await this.threadMake(expr, attributes);
    await this.threadOpen(id);
    return id;
  }

  /** Shows a thread in the UI (this tab's own, also in a view). `''` reads the thread open
   * now again: for a page that hid Sotto's element and shows it again. */
  async threadOpen(threadId) {
    await this.#settled();
    if (!this.#viewing) return this.#local('threadOpen', [String(threadId)]);
    if (!this.#core) throw codedError('destroyed', 'this client has been destroyed');
    return this.#core.threadOpen(String(threadId));
  }

  /**
   * Encrypts and sends a message to every member's devices; resolves to its ID. `html`
   * travels with it for the receiving page (Sotto's UI shows only the text);
   * `attachments` are Files or Blobs (each encrypted under its own key before upload);
   * `attrs` are the message's own attributes; `options.replyTo` is the ID of the message
   * it answers.
   */
  async threadSendMessage(threadId, text, html, attachments, attrs, options) {
    let files;
    if (attachments != null) {
      if (!Array.isArray(attachments)) throw codedError('bad_attachment', 'attachments must be an array of Files or Blobs');
      files = await Promise.all(attachments.map(async (f) => {
        if (!(f instanceof Blob)) throw codedError('bad_attachment', 'each attachment must be a File or Blob');
        return { name: f.name || 'file', type: f.type, bytes: new Uint8Array(await f.arrayBuffer()) };
      }));
    }
    const replyTo = options?.replyTo == null ? undefined : String(options.replyTo);
    return this.#call('threadSendMessage', String(threadId), String(text ?? ''), html == null ? undefined : String(html), attrs, files, replyTo);
  }

  /** Replaces the text of one of your messages on every member's device; resolves to it as edited. */
  threadMessageEdit(threadId, messageId, text, html) {
    return this.#call('threadMessageChange', 'edit', String(threadId), String(messageId), String(text ?? ''), html == null ? undefined : String(html));
  }

  /** Deletes one of your messages for everyone; resolves to it as deleted. */
  threadMessageDelete(threadId, messageId) {
    return this.#call('threadMessageChange', 'delete', String(threadId), String(messageId), '');
  }

  /** Reacts with an emoji (one per person; the same one again takes it back); resolves to the message. */
  threadMessageReact(threadId, messageId, emoji) {
    return this.#call('threadMessageChange', 'react', String(threadId), String(messageId), String(emoji ?? ''));
  }

  /** Tells the thread's members that you are typing (or, with `false`, that you stopped). Call
   * it on every keystroke if you like: a start goes at most every 3 s. */
  threadTyping(threadId, typing = true) {
    return this.#call('threadTyping', String(threadId), typing !== false);
  }

  /** Fetches and decrypts attachment `index` of a message, as a File. */
  async attachmentGet(messageId, index = 0) {
    const a = await this.#call('attachmentGet', String(messageId), Number(index));
    return new File([a.bytes], a.name, { type: a.type });
  }

  /** The messages on this device whose text holds every word of `query` (in any case),
   * newest first: in every thread, or in `threadId`'s; at most `limit` (default 50). */
  search(query, options) {
    const threadId = options?.threadId == null ? undefined : String(options.threadId);
    const limit = options?.limit == null ? undefined : Number(options.limit);
    return this.#call('search', String(query ?? ''), threadId, limit);
  }

  /** The threads on this device, newest activity first. */
  threadList() {
    return this.#call('threadList');
  }

  /** A thread's messages, oldest first; `{limit, before}` pages back from the newest. */
  threadMessages(threadId, options) {
    return this.#call('threadMessages', String(threadId), options);
  }

  /** Every shared attribute of a thread. */
  threadListAttributes(threadId) {
    return this.#call('threadListAttributes', String(threadId));
  }

  threadGetAttribute(threadId, key) {
    return this.#call('threadGetAttribute', String(threadId), String(key));
  }

  /** Sets a shared attribute (null removes it) on every member's devices. */
  threadSetAttribute(threadId, key, value) {
    return this.#call('threadSetAttribute', String(threadId), String(key), value);
  }

  /** Disappearing messages after `seconds` on every member's device (0 turns it off). */
  threadSetExpiration(threadId, seconds) {
    return this.#call('threadSetExpiration', String(threadId), Number(seconds));
  }

  /** Adds the users of an expression to the thread. */
  threadAmendDistribution(threadId, expr) {
    return this.#call('threadAmendDistribution', String(threadId), String(expr));
  }

  /** Removes the users of an expression from the thread. */
  threadRepealDistribution(threadId, expr) {
    return this.#call('threadRepealDistribution', String(threadId), String(expr));
  }

  /** Adds one user, by ID or @tag. */
  threadAddMember(threadId, user) {
    return this.#call('threadAddMember', String(threadId), String(user));
  }

  /** Removes one user, by ID or @tag. */
  threadRemoveMember(threadId, user) {
    return this.#call('threadRemoveMember', String(threadId), String(user));
  }

  /** Leaves the thread. */
  threadLeave(threadId) {
    return this.#call('threadLeave', String(threadId));
  }

  /** Marks the thread read up to its newest message and tells its members. */
  threadMarkRead(threadId) {
    return this.#call('threadMarkRead', String(threadId));
  }

  /** The same as threadMarkRead. */
  markRead(threadId) {
    return this.threadMarkRead(threadId);
  }

  /** Hides the thread on this device until a message arrives or it is restored. */
  threadArchive(threadId) {
    return this.#call('threadArchive', String(threadId));
  }

  threadRestore(threadId) {
    return this.#call('threadRestore', String(threadId));
  }

  /** Forgets the thread and its messages on this device. */
  threadExpunge(threadId) {
    return this.#call('threadExpunge', String(threadId));
  }

  /** Deletes messages on this device; resolves to how many. */
  threadDestroyMessages(threadId, messageIds) {
    if (!Array.isArray(messageIds)) return Promise.reject(codedError('bad_argument', 'messageIds must be an array'));
    return this.#call('threadDestroyMessages', String(threadId), messageIds.map(String));
  }

  /** Collapses (true), expands (false) or toggles the thread list; resolves to collapsed. */
  navPanelToggle(collapse) {
    return this.#answer('navPanelToggle', collapse === undefined ? undefined : Boolean(collapse));
  }

  // Closes the notifications for which `which({threadId}, messageId)` is true.
  #unnotify(which) {
    for (const [id, n] of this.#notified) {
      if (which(n, id)) {
        this.#notified.delete(id);
        n.shown.close();
      }
    }
  }

  /** Unmounts the UI and closes the connection. */
  destroy() {
    this.#untitle?.();
    this.#unspeak?.();
    this.#unnotify(() => true);
    this.#destroyed = true;
    this.#leaveTabs('destroyed', 'this client has been destroyed');
    if (this.#core) {
      this.#core.destroy();
      this.#core.free();
      this.#core = null;
    }
  }
}

// `<sotto-chat server="https://chat.example.com" thread="@support"></sotto-chat>`: Sotto in
// plain HTML. Sign-in comes from a `jwt`, `external-auth-code` or `org-ephemeral-token`
// attribute (taken out of the markup at once; a later `jwt` signs in or renews), or from
// `element.client.setIdentityToken(jwt)`; `org`, `theme`, `brand`, `locale` and `show-nav="false"` are the
// options of the same names, read when it is inserted; `thread` is an expression whose
// thread opens once signed in (the same one at every page load). Removing the element
// ends its client.
const ElementBase = typeof HTMLElement === 'undefined' ? class {} : HTMLElement;
class SottoChat extends ElementBase {
  static observedAttributes = ['jwt'];

  client = null;
  // Tokens are taken out of the attributes (where any script or page dump would read
  // them) and kept here, for a client made again when the element is inserted again.
  #auth;

  #take(name) {
    const value = this.getAttribute(name);
    if (value) this.removeAttribute(name);
    return value || undefined;
  }

  attributeChangedCallback(name, old, jwt) {
    if (!jwt) return;
    this.#take('jwt');
    this.#auth = { jwt };
    this.client?.setIdentityToken(jwt).catch((err) => console.warn('sotto-chat:', err.code, err.message));
  }

  connectedCallback() {
    if (this.client) return;
    const attr = (name) => this.getAttribute(name) || undefined;
    const code = this.#take('external-auth-code');
    const visitor = this.#take('org-ephemeral-token');
    if (code) this.#auth = { externalAuthCode: code };
    if (visitor) this.#auth = { orgEphemeralToken: visitor };
    this.client = new Client(this, this.#auth, {
      url: attr('server'),
      org: attr('org'),
      theme: attr('theme'),
      brand: attr('brand'),
      locale: attr('locale'),
      showNav: attr('show-nav') !== 'false',
      onLoaded: async (c) => {
        const thread = attr('thread');
        if (!thread) return;
        try {
          await c.threadOpen(await c.threadEnsure(thread));
        } catch (err) {
          console.warn('sotto-chat:', err.code, err.message);
        }
      },
    });
  }

  disconnectedCallback() {
    // Moved within the page, it is connected again before this runs: keep the client.
    queueMicrotask(() => {
      if (this.isConnected || !this.client) return;
      this.client.destroy();
      this.client = null;
    });
  }
}
if (typeof customElements !== 'undefined' && !customElements.get('sotto-chat')) {
  customElements.define('sotto-chat', SottoChat);
}
