/** Sotto: an end-to-end encrypted messenger that mounts in one of your page's elements. */

/** How the client signs in: exactly one of these. */
export type Auth =
  | { jwt: string }
  | { orgEphemeralToken: string; user?: { name?: string; firstName?: string; lastName?: string; email?: string } }
  /** Called at start, before the session expires and after an authentication failure. */
  | { tokenProvider: () => string | Promise<string> }
  /** A JWT as in TypingMind's external authentication; also read from `?externalAuthCode=`. */
  | { externalAuthCode: string }
  /** Nothing yet: wait for `setIdentityToken(jwt)` (or take `?externalAuthCode=` from the address). */
  | Record<string, never>;

export interface ClientOptions {
  /** The Sotto server's base URL. Default: the origin this script was loaded from. */
  url?: string;
  /** The org to sign in to, when the server has several and the token does not say. */
  org?: string;
  /** Called with the client once the wasm module has started. */
  onInit?: (client: Client) => void;
  /** Called with the client once it is signed in, its device ready and connected. */
  onLoaded?: (client: Client) => void;
  /** Show the thread list (default true). */
  showNav?: boolean;
  /** Show the header bar (default true). */
  showHeader?: boolean;
  /** Show the open thread's title and members (default true). */
  showThreadHeader?: boolean;
  /** A thread to open once loaded. */
  openThreadId?: string;
  /** The name in the header instead of "Sotto" (your site's, e.g. "Acme Support"); set as text. */
  brand?: string;
  /**
   * The UI's language, a BCP 47 tag ("de", "he-IL"): its words (German is shipped; others
   * from `strings`), its dates and times, and right to left for such languages. Sets
   * `lang` and `dir` on the element unless it has them. English by default.
   */
  locale?: string;
  /**
   * The UI's words in the site's own language, over the shipped ones: English text to
   * translation, with `{}` where the English has a name or a number (the package's
   * `locales/de.json` lists every key).
   */
  strings?: Record<string, string>;
  /** "light" (default), "dark" or "auto" (follows the system). Colours are CSS custom properties: see the README. */
  theme?: 'light' | 'dark' | 'auto';
  /** How long after `identitytokenexpired` a new token still continues the session (ms, default 30000). */
  identityTokenGraceMs?: number;
  /**
   * When this browser has no key for the user: "auto" (default) asks only if the user has a
   * device elsewhere to import from, "prompt" always asks, "generate" never asks.
   */
  provisioning?: 'auto' | 'prompt' | 'generate';
  /** Notify of messages that arrive while the page is hidden (sender and a preview), once
   * the site has the Notification permission (Sotto never asks for it). `preview: false`
   * shows "New message" instead of the text; `sound: true` lets the system play its sound. */
  notifications?: boolean | { preview?: boolean; sound?: boolean };
  /** `false`: neither tell others when this user types nor show when they do (default true). */
  typing?: boolean;
  /** Show the unread count in the document's title: "(3) Page title". */
  titleUnread?: boolean;
  /** `false`: no UI at all (headless), for a page that draws its own from the API and
   * events. The element is only an anchor then; answer `provisioningrequired` and
   * `linkrequest` from code. */
  ui?: boolean;
  /** Visitor details for `{orgEphemeralToken}` sign-in. */
  ephemeralUserInfo?: { name?: string; firstName?: string; lastName?: string; email?: string };
}

export interface User {
  id: string;
  tag: string;
  name?: string;
  email?: string;
  ephemeral: boolean;
}

export interface ThreadSummary {
  id: string;
  /** The `title` attribute, or the other members' names. */
  title: string;
  /** Canonical distribution, e.g. "@alice + @bob". */
  distribution: string;
  members: User[];
  attributes: Record<string, unknown>;
  /** Seconds after which messages disappear, or null. */
  expiration: number | null;
  unread: number;
  messageCount: number;
  archived: boolean;
  /** You left, or were removed. */
  left: boolean;
  lastActivity: number;
}

export interface ThreadMessage {
  id: string;
  threadId: string;
  senderId: string;
  senderName: string;
  /** Unix milliseconds, by the sender's clock. */
  sentAt: number;
  text: string;
  /** True for messages sent from this user's devices. */
  outgoing: boolean;
  /** The sender page's HTML rendering, if it gave one (Sotto's UI shows only `text`). */
  html?: string;
  /** The message's own attributes. */
  attrs?: Record<string, unknown>;
  /** Files sent with it; fetch one with attachmentGet(id, index). */
  attachments?: { id: string; name: string; type: string; size: number }[];
  /** `failed`: could never be sent; `expired`: no other member's device took it before
   * the server deleted it at its maximum age. */
  status: 'pending' | 'sent' | 'delivered' | 'received' | 'failed' | 'expired';
  /** When every device deletes it (disappearing messages). */
  expiresAt?: number;
  /** The ID of the message it replies to. */
  replyTo?: string;
  /** The members it mentions by @tag (user IDs). */
  mentions?: string[];
  /** It mentions you (present only when true). */
  mentioned?: boolean;
  /** When its sender last edited it; `text` is the newest (older texts are not kept). */
  editedAt?: number;
  /** Its sender deleted it for everyone: text, html, attrs, attachments and reactions are gone. */
  deleted?: boolean;
  /** At most one per member; `at` is when it was given (sender's clock). */
  reactions?: { userId: string; emoji: string; at: number }[];
}

/** Every rejection and `error` event carries one of these. */
export interface SottoError extends Error {
  /** Stable and machine-readable, e.g. "expr_unknown_tag", "network", "token_expired". */
  code: string;
}

export interface ClientEventMap {
  init: CustomEvent<undefined>;
  /** The client can take an identity token (again, after a session is cleared). */
  ready: CustomEvent<undefined>;
  loaded: CustomEvent<undefined>;
  /** This browser has no key for the user: generateKey(), importKeyFromRunningClient() or keyBackupImport(). */
  provisioningrequired: CustomEvent<undefined>;
  provisioningdone: CustomEvent<{ method: 'generate' | 'import' | 'backup' }>;
  /** reason: "link_declined", "link_expired", "cancelled", "network", … */
  provisioningerror: CustomEvent<{ reason: string; message: string }>;
  /** A new browser of this user asks to be linked: linkApprove(id) to compare codes with it, linkDecline(id) to refuse. */
  linkrequest: CustomEvent<{ id: string; expiresAt: number }>;
  /** On both browsers: the code to compare; linkApprove(id) when they match. */
  linkcode: CustomEvent<{ id: string; code: string; expiresAt: number }>;
  /** The session ended; call setIdentityToken within identityTokenGraceMs to continue it. */
  identitytokenexpired: CustomEvent<undefined>;
  /** This tab is signed out (clearSession here or in another tab, or the grace window ran out). */
  sessioncleared: CustomEvent<undefined>;
  'thread-message': CustomEvent<ThreadMessage>;
  /** A message was edited, deleted or reacted to (here or on another member's device): it as it now is. */
  'thread-message-update': CustomEvent<ThreadMessage>;
  /** A member started (`typing: true`) or stopped typing in a thread. A start with no newer one
   *  lapses after 6 s (a `typing: false` event says so), and their message ends it. */
  typing: CustomEvent<{ threadId: string; userId: string; name: string; typing: boolean }>;
  /** A thread's unread count changed (a message came, or it was read here or on another device). */
  unreadchange: CustomEvent<{ total: number; threads: Record<string, number> }>;
  /** A member (or you, on another device) has read a thread up to readUntil. */
  'thread-message-readmark': CustomEvent<{ threadId: string; userId: string; readUntil: number }>;
  connectionchange: CustomEvent<{ connected: boolean }>;
  /** A contact's identity key changed (they set up a new key, or someone sits between you): compare safety numbers. */
  identitychange: CustomEvent<{ userId: string }>;
  /** A user's devices changed: for this user, a browser was linked or removed (no `added`);
   *  for a contact, `added` names their new devices, seen when sending to them. */
  devicechange: CustomEvent<{ userId: string; added?: string[] }>;
  /** Another tab of this browser holds this person's account (one tab at a time does). This
   *  tab shows the same threads and its calls are answered by that tab (a call that tab took
   *  but could not answer before it closed rejects with `tab_closed`); it takes over by
   *  itself when that one closes or signs out. */
  tabwaiting: CustomEvent<undefined>;
  error: CustomEvent<SottoError>;
}

export interface SafetyNumber {
  userId: string;
  /** 60 digits in twelve groups of five, the same on both sides. */
  number: string;
  /** The contact's identity changed and the person has not acknowledged it yet. */
  changed: boolean;
  /** The person verified this identity (markVerified) and it has not changed since. */
  verified: boolean;
}

export class Client extends EventTarget {
  constructor(el: Element, auth?: Auth | null, options?: ClientOptions);
  setIdentityToken(jwt: string): Promise<void>;
  generateKey(): Promise<void>;
  importKeyFromRunningClient(): Promise<void>;
  /** Rejects with code "wrong_passphrase", "malformed", "backup_of_another_user" or "no_provisioning". */
  keyBackupImport(backup: string, passphrase: string): Promise<void>;
  /** Passphrase of at least 8 characters; Argon2id (19 MiB, 2 passes) + AES-256-GCM. */
  keyBackupExport(passphrase: string): Promise<string>;
  safetyNumber(userId: string): Promise<SafetyNumber>;
  /** `number` is the one compared (from safetyNumber). Rejects with "no_identity" when no
   * key is known yet, "safety_number_changed" when the key changed since. */
  markVerified(userId: string, number: string): Promise<void>;
  /** The person saw the note that this user's key changed or that they have a new device. */
  acknowledgeIdentityChange(userId: string): Promise<void>;
  linkApprove(id: string): Promise<void>;
  linkDecline(id: string): Promise<void>;
  clearSession(): Promise<void>;
  threadMake(expr: string, attributes?: Record<string, unknown>): Promise<string>;
  threadEnsure(expr: string, attributes?: Record<string, unknown>): Promise<string>;
  threadStartWithExpression(expr: string, attributes?: Record<string, unknown>): Promise<string>;
  threadOpen(threadId: string): Promise<void>;
  /** Each attachment (File or Blob, up to 10 MB, 10 per message) is encrypted under its own key before upload. */
  threadSendMessage(threadId: string, text: string, html?: string | null, attachments?: Blob[] | null, attrs?: Record<string, unknown> | null, options?: { replyTo?: string }): Promise<string>;
  /** Replaces the text of one of your messages on every member's device. Rejects with
   * "not_sender", "unknown_message", "message_deleted", "empty_message", "message_too_long". */
  threadMessageEdit(threadId: string, messageId: string, text: string, html?: string | null): Promise<ThreadMessage>;
  /** Deletes one of your messages for everyone (its text and attachment keys leave every member's device). */
  threadMessageDelete(threadId: string, messageId: string): Promise<ThreadMessage>;
  /** Your reaction to a message: one per person, replacing yours; the same emoji again takes it
   * back. Rejects with "bad_reaction" for anything but a short emoji (at most 32 bytes, no spaces). */
  threadMessageReact(threadId: string, messageId: string, emoji: string): Promise<ThreadMessage>;
  /** Tells the thread's members that you are typing (`false`: that you stopped). Sent at most
   *  every 3 s however often it is called, only while connected, and never stored. */
  threadTyping(threadId: string, typing?: boolean): Promise<void>;
  /** Fetches and decrypts attachment `index` of a message. */
  attachmentGet(messageId: string, index?: number): Promise<File>;
  threadList(): Promise<ThreadSummary[]>;
  /** The messages this browser holds whose text contains every word of `query`, in any case,
   *  newest first: in every thread, or only in `threadId`'s; at most `limit` (1–500, default
   *  50). The search runs over the decrypted history on this device; nothing is sent to the
   *  server. Rejects with "bad_argument" for an empty or over-256-byte query. */
  search(query: string, options?: { threadId?: string; limit?: number }): Promise<ThreadMessage[]>;
  threadMessages(threadId: string, options?: { limit?: number; before?: number }): Promise<ThreadMessage[]>;
  threadListAttributes(threadId: string): Promise<Record<string, unknown>>;
  threadGetAttribute(threadId: string, key: string): Promise<unknown>;
  threadSetAttribute(threadId: string, key: string, value: unknown): Promise<void>;
  threadSetExpiration(threadId: string, seconds: number): Promise<void>;
  threadAmendDistribution(threadId: string, expr: string): Promise<void>;
  threadRepealDistribution(threadId: string, expr: string): Promise<void>;
  threadAddMember(threadId: string, user: string): Promise<void>;
  threadRemoveMember(threadId: string, user: string): Promise<void>;
  threadLeave(threadId: string): Promise<void>;
  /** Marks the thread read up to its newest message and tells its members (Sotto's UI
   * does it whenever a thread is open; a page with its own UI calls this). */
  threadMarkRead(threadId: string): Promise<void>;
  /** The same as threadMarkRead. */
  markRead(threadId: string): Promise<void>;
  threadArchive(threadId: string): Promise<void>;
  threadRestore(threadId: string): Promise<void>;
  threadExpunge(threadId: string): Promise<void>;
  threadDestroyMessages(threadId: string, messageIds: string[]): Promise<number>;
  navPanelToggle(collapse?: boolean): Promise<boolean>;
  destroy(): void;
  addEventListener<K extends keyof ClientEventMap>(type: K, listener: (ev: ClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ClientEventMap>(type: K, listener: (ev: ClientEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/**
 * `<sotto-chat server thread jwt|external-auth-code|org-ephemeral-token org theme brand locale show-nav>`:
 * Sotto in plain HTML (defined when the package loads). Removing it destroys its client.
 */
export class SottoChat extends HTMLElement {
  /** The element's client, once connected (null after removal). */
  readonly client: Client | null;
}

declare global {
  interface HTMLElementTagNameMap {
    'sotto-chat': SottoChat;
  }
}

export const version: string;
