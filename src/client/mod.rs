//! `ClientCore`: what `sotto.Client` runs on. It signs in and keeps the session alive
//! ([`lifecycle`]), seals outgoing messages for every recipient device and opens incoming
//! ones ([`messaging`]), and keeps the UI and the page's listeners informed.
//!
//! Every exported method returns a Promise; failures reject with an `Error` carrying `code`.
//! Events reach the page through the `emit(type, detail)` function given at construction.

mod api;
mod attachments;
mod backup;
mod changes;
mod devices;
mod expiry;
mod groups;
mod inbox;
mod keys;
mod lifecycle;
mod linking;
mod offline;
mod outbox;
mod provisioning;
mod receipts;
mod retries;
mod search;
mod tab_view;
mod threads;
mod topics;
mod trust;
mod typing;

use crate::error::{ClientError, ClientResult};
use crate::model::Thread;
use crate::options::{parse_auth, parse_options, Auth, Options};
use crate::socket::Delivery;
use crate::ui::{Ui, UiActions};
use sotto_core::account::Account;
use sotto_core::protocol::{DeliveredEnvelope, User};
use sotto_core::sealing::Kind;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local};
use web_sys::Element;

/// Everything that belongs to one signed-in session; dropped whole at sign-out.
#[derive(Default)]
struct State {
    /// Signed out, showing saved history, a view over another tab, signed in, or expiring.
    life: lifecycle::Lifecycle,
    /// Where this user's device key lives in IndexedDB.
    store_key: Option<String>,
    device_id: Option<String>,
    /// This device's keys and sessions (see `keys.rs`); saved encrypted after every change.
    account: Option<Account>,
    /// Held while this tab is the one that holds the account (released with the session).
    tab_lock: Option<crate::tab_lock::TabLock>,
    /// A view: the identity warnings and new devices the holder's UI shows. The holder: the
    /// last of these it told its views.
    view_marks: (Vec<String>, Vec<String>),
    /// History reads a view has started, and the newest one shown (see `reload_view`).
    view_reloads: u32,
    view_shown: u32,
    /// The unread counts the page was last told of (`unreadchange`).
    unread_told: Vec<(String, u32)>,
    /// Contacts who added a device while this session ran (noted in the UI).
    new_devices: Vec<String>,
    /// Verified device lists by user (`None`: no identity yet), kept until a send is refused
    /// with `devices_changed` or the server says the user's list changed.
    device_lists: sotto_core::vec_map::VecMap<String, Option<devices::VerifiedDevices>>,
    threads: Vec<Thread>,
    open_thread: Option<String>,
    /// The IDs of the last `SEEN_LIMIT` messages taken (or loaded), so a redelivery is
    /// dropped. A list searched in order: a hash set's code cost the wasm more
    /// than a scan of 10,000 short strings costs a message.
    seen: VecDeque<String>,
    inbox: VecDeque<DeliveredEnvelope>,
    /// Senders this device asked to send a message again (a retry request), whose resend
    /// may take its place a little back in the thread (see `record`).
    asked_again: Vec<String>,
    pumping: bool,
    /// The outbox is being sent; a second trigger meanwhile has nothing to add.
    flushing: bool,
    delivery: Option<Delivery>,
    /// The socket has said `ready`: sends may go over it (see `send_envelopes`).
    socket_ready: bool,
    /// Sends made over the socket, by frame id, waiting for `stored` or `refused`.
    /// (A list: a hash map of its own type would cost its code in the wasm.)
    pending_sends: Vec<(u64, outbox::PendingSend)>,
    next_send_id: u64,
    /// Pending refresh, expiry or grace timers.
    timers: Vec<Option<i32>>,
    /// The next deletion of a disappearing message.
    sweep_timer: Option<i32>,
    /// `delivered` frames that came before the send's receipt did.
    early_deliveries: Vec<i64>,
    /// Link requests from new browsers of this user that this browser answered.
    link_requests: Vec<linking::Answering>,
    /// Link requests already answered here: a replayed request is not answered again.
    answered_links: Vec<String>,
    /// Refreshes of followed groups running or due (0, 1 or 2; see `groups.rs`).
    following_groups: u8,
    /// Members whom nothing can reach for now, by user ID: `"not_joined"` (no device yet)
    /// or `"disabled"` (by the site). The thread header says so.
    unreachable: Vec<(String, &'static str)>,
    /// Changes that came before their message and its thread (see `Thread::held`, which
    /// keeps those of known threads with the history).
    held: Vec<String>,
    /// What the UI's search field holds ("" when it is empty: the threads are listed).
    search: String,
    /// Who is typing where now (see `typing.rs`).
    typing: Vec<typing::Typist>,
    /// The thread this user was last said to be typing in, and when (a stop clears it).
    typing_sent: Option<(String, i64)>,
    /// When the last typing stop went.
    typing_stopped: i64,
    /// Bumped at every sign-in and sign-out, so timers and retries of an older session
    /// know to stand down.
    epoch: u32,
}

impl State {
    /// The thread `id`, to change it.
    fn thread_mut(&mut self, id: &str) -> ClientResult<&mut Thread> {
        self.threads
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| unknown_thread(id))
    }
}

/// A listener on the page: where, for which event, and the closure to remove at destroy.
type PageListener = (web_sys::EventTarget, &'static str, Closure<dyn FnMut()>);

struct Inner {
    host: Element,
    auth: RefCell<Auth>,
    options: Options,
    emit: js_sys::Function,
    ui: RefCell<Option<Ui>>,
    state: RefCell<State>,
    destroyed: std::cell::Cell<bool>,
    channel: RefCell<Option<lifecycle::Channel>>,
    /// The page's listeners (`online` on the window, which sends what was typed offline;
    /// `visibilitychange` on the document, which reads the open thread), removed at destroy.
    page_listeners: RefCell<Vec<PageListener>>,
    /// Resolves the waiting provisioning question with "generate" or "import".
    provisioning_choice: RefCell<Option<js_sys::Function>>,
    /// A one-time prekey top-up is running (one at a time).
    replenishing: std::cell::Cell<bool>,
    /// This browser's own link request while it asks to be linked.
    own_link: RefCell<linking::OwnLink>,
    /// The last history write; the next one waits for it (see `save_now`).
    write_chain: RefCell<js_sys::Promise>,
    /// The last account write, likewise (see `save_account`).
    account_chain: RefCell<js_sys::Promise>,
    /// An identity restored from a backup, waiting for provisioning to take it.
    restored_identity: RefCell<Option<sotto_core::identity::Identity>>,
    /// The user being provisioned (a backup must be theirs).
    pending_user: RefCell<Option<String>>,
}

#[wasm_bindgen]
pub struct ClientCore {
    inner: Rc<Inner>,
}

fn promise<F>(fut: F) -> js_sys::Promise
where
    F: std::future::Future<Output = ClientResult<JsValue>> + 'static,
{
    // Boxed, so the promise machinery is compiled once rather than once per method: it
    // saves tens of kilobytes of wasm.
    boxed_promise(Box::pin(fut))
}

fn boxed_promise(
    fut: std::pin::Pin<Box<dyn std::future::Future<Output = ClientResult<JsValue>>>>,
) -> js_sys::Promise {
    future_to_promise(async move { fut.await.map_err(|e| e.to_js()) })
}

fn to_js<T: serde::Serialize>(value: &T) -> JsValue {
    json_to_js(serde_json::to_string(value).ok())
}

/// The part of [`to_js`] that is the same for every type, compiled once.
#[inline(never)]
fn json_to_js(json: Option<String>) -> JsValue {
    json.and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::NULL)
}

/// A JSON-like value from JavaScript, e.g. an attribute.
fn js_value(value: &JsValue) -> ClientResult<serde_json::Value> {
    if value.is_undefined() || value.is_null() {
        return Ok(serde_json::Value::Null);
    }
    let text: String = js_sys::JSON::stringify(value)
        .map_err(|_| ClientError::new("bad_attributes", "attributes must be JSON values"))?
        .into();
    serde_json::from_slice(text.as_bytes()).map_err(|e| crate::http::failed("bad_attributes", e))
}

/// An optional attributes object from JavaScript.
fn js_map(value: &JsValue) -> ClientResult<serde_json::Map<String, serde_json::Value>> {
    match js_value(value)? {
        serde_json::Value::Null => Ok(Default::default()),
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(ClientError::new(
            "bad_attributes",
            "attributes must be an object such as {title}",
        )),
    }
}

fn unknown_thread(id: &str) -> ClientError {
    ClientError::new("unknown_thread", format!("no thread {id:?} on this device"))
}

#[wasm_bindgen]
impl ClientCore {
    /// `emit(type, detail)` dispatches an event on the page's `Client`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        host: Element,
        auth: JsValue,
        options: JsValue,
        emit: js_sys::Function,
    ) -> Result<ClientCore, JsValue> {
        let auth = parse_auth(&auth, &options)?;
        let options = parse_options(&options)?;
        Ok(ClientCore {
            inner: Rc::new(Inner {
                host,
                auth: RefCell::new(auth),
                options,
                emit,
                ui: RefCell::new(None),
                state: RefCell::new(State::default()),
                destroyed: std::cell::Cell::new(false),
                channel: RefCell::new(None),
                page_listeners: RefCell::new(Vec::new()),
                provisioning_choice: RefCell::new(None),
                own_link: RefCell::default(),
                replenishing: std::cell::Cell::new(false),
                write_chain: RefCell::new(js_sys::Promise::resolve(&JsValue::UNDEFINED)),
                account_chain: RefCell::new(js_sys::Promise::resolve(&JsValue::UNDEFINED)),
                restored_identity: RefCell::new(None),
                pending_user: RefCell::new(None),
            }),
        })
    }

    /// Mounts the UI, fires `ready`, and signs in if `auth` allows; resolves after the first
    /// attempt (a token provider keeps retrying in the background).
    pub fn start(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.start().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Signs in with `jwt`, or refreshes the session (also within the grace window after
    /// `identitytokenexpired`).
    #[wasm_bindgen(js_name = setIdentityToken)]
    pub fn set_identity_token(&self, jwt: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.set_identity_token(jwt).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Signs out every tab of this origin and removes this user's data from this browser.
    #[wasm_bindgen(js_name = clearSession)]
    pub fn clear_session(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.clear_session().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Answers `provisioningrequired` with a new key for this browser.
    #[wasm_bindgen(js_name = generateKey)]
    pub fn generate_key(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            if inner.choose("generate") {
                Ok(JsValue::UNDEFINED)
            } else {
                Err(provisioning::no_provisioning())
            }
        })
    }

    /// Answers `provisioningrequired` by linking to a browser where the user is signed in.
    #[wasm_bindgen(js_name = importKeyFromRunningClient)]
    pub fn import_key_from_running_client(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            if inner.choose("import") {
                Ok(JsValue::UNDEFINED)
            } else {
                Err(provisioning::no_provisioning())
            }
        })
    }

    /// Answers `provisioningrequired` by restoring the identity from an encrypted backup.
    /// Rejects with `wrong_passphrase`, `malformed` or `backup_of_another_user`.
    #[wasm_bindgen(js_name = keyBackupImport)]
    pub fn key_backup_import(&self, backup: String, passphrase: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.import_backup(&backup, &passphrase)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The user's identity encrypted under `passphrase` (Argon2id, 19 MiB, 2 passes, then
    /// AES-256-GCM), as one line of text to keep somewhere safe.
    #[wasm_bindgen(js_name = keyBackupExport)]
    pub fn key_backup_export(&self, passphrase: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.export_backup(&passphrase)?.into()) })
    }

    /// The safety number of this user and `userId`: `{userId, number, changed}`.
    #[wasm_bindgen(js_name = safetyNumber)]
    pub fn safety_number(&self, user_id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { inner.safety_number(&user_id).await })
    }

    /// The person compared the safety `number` (as `safetyNumber` gave it) with `userId`
    /// and it matched.
    #[wasm_bindgen(js_name = markVerified)]
    pub fn mark_verified(&self, user_id: String, number: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.mark_verified(&user_id, &number).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The person saw the note that `userId`'s key changed or that they have a new device:
    /// it goes.
    #[wasm_bindgen(js_name = acknowledgeIdentityChange)]
    pub fn acknowledge_identity_change(&self, user_id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.acknowledge_identity_change(&user_id).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Approves a `linkrequest` from a new browser of this user or, on the new browser,
    /// confirms that the `linkcode` it shows matches the other browser's.
    #[wasm_bindgen(js_name = linkApprove)]
    pub fn link_approve(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.answer_link(&id, true).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Declines a `linkrequest`, or (on the new browser) stops linking.
    #[wasm_bindgen(js_name = linkDecline)]
    pub fn link_decline(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.answer_link(&id, false).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves `expr` and makes a new thread with those users and this user; resolves to
    /// the thread's ID. `attributes` (e.g. `{title}`) are shared with every member.
    #[wasm_bindgen(js_name = threadMake)]
    pub fn thread_make(&self, expr: String, attributes: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.thread_make(&expr, js_map(&attributes)?).await?.into()) })
    }

    /// The thread with exactly these members, or a new one.
    #[wasm_bindgen(js_name = threadEnsure)]
    pub fn thread_ensure(&self, expr: String, attributes: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            Ok(inner
                .thread_ensure(&expr, js_map(&attributes)?)
                .await?
                .into())
        })
    }

    /// Makes a thread and opens it.
    #[wasm_bindgen(js_name = threadStartWithExpression)]
    pub fn thread_start_with_expression(
        &self,
        expr: String,
        attributes: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let id = inner.thread_make(&expr, js_map(&attributes)?).await?;
            inner.thread_open(&id, false)?;
            Ok(id.into())
        })
    }

    /// Shows the thread in the UI (and tells the members it is read).
    #[wasm_bindgen(js_name = threadOpen)]
    pub fn thread_open(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            // "": the thread open now, read again (the page has shown Sotto again).
            if id.is_empty() {
                inner.read_open_thread();
                return Ok(JsValue::UNDEFINED);
            }
            // A view first reads what the holder saved (a thread it has just made).
            inner.reload_view().await;
            inner.thread_open(&id, false)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends `text` to every member's devices; resolves to the message's ID.
    /// `files` is `[{name, type, bytes}]` (the JS shell reads Files into that).
    #[wasm_bindgen(js_name = threadSendMessage)]
    pub fn thread_send_message(
        &self,
        id: String,
        text: String,
        html: Option<String>,
        attrs: JsValue,
        files: JsValue,
        reply_to: Option<String>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let files = attachments::files_from_js(&files)?;
            Ok(inner
                .send_message(&id, text, html, js_map(&attrs)?, files, reply_to)
                .await?
                .into())
        })
    }

    /// `threadMessageEdit` (`kind` "edit", with the new text and HTML),
    /// `threadMessageDelete` ("delete") and `threadMessageReact` ("react", with the emoji)
    /// of the JS shell, in one export: resolves to the message as it now is.
    #[wasm_bindgen(js_name = threadMessageChange)]
    pub fn thread_message_change(
        &self,
        kind: String,
        id: String,
        message_id: String,
        text: String,
        html: Option<String>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let kind = match kind.as_str() {
                "edit" => Kind::Edit,
                "delete" => Kind::Delete,
                "react" => Kind::React,
                _ => return Err(ClientError::new("bad_argument", "no such change")),
            };
            inner
                .change_message(&id, &message_id, kind, text, html)
                .await
        })
    }

    /// Tells the thread's members that this user is typing (`typing` true) or stopped.
    #[wasm_bindgen(js_name = threadTyping)]
    pub fn thread_typing(&self, id: String, typing: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.send_typing(&id, typing).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Fetches and decrypts an attachment: `{name, type, size, bytes}`.
    #[wasm_bindgen(js_name = attachmentGet)]
    pub fn attachment_get(&self, message_id: String, index: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let (a, bytes) = inner.attachment_get(&message_id, index as usize).await?;
            Ok(attachments::to_js_file(&a, &bytes))
        })
    }

    /// The threads this client knows, newest activity first.
    #[wasm_bindgen(js_name = threadList)]
    pub fn thread_list(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let (_, own) = inner.session()?;
            let state = inner.state.borrow();
            let list: Vec<serde_json::Value> = state
                .threads
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "id": t.id, "title": t.title(&own.id), "distribution": t.distribution,
                        "members": t.members, "attributes": t.attributes, "expiration": t.expiration,
                        "unread": t.unread, "messageCount": t.messages.len(), "archived": t.archived,
                        "left": t.left, "lastActivity": t.last_activity(),
                    })
                })
                .collect();
            Ok(to_js(&list))
        })
    }

    /// Messages of a thread, oldest first: `{limit, before}` pages back from the newest.
    #[wasm_bindgen(js_name = threadMessages)]
    pub fn thread_messages(&self, id: String, options: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let get = |k: &str| {
                js_sys::Reflect::get(&options, &k.into())
                    .ok()
                    .and_then(|v| v.as_f64())
            };
            let (limit, before) = if options.is_object() {
                (get("limit"), get("before"))
            } else {
                (None, None)
            };
            if limit.is_some_and(|l| l < 0.0) {
                return Err(ClientError::new("bad_option", "limit must be 0 or more"));
            }
            Ok(to_js(&inner.messages_page(
                &id,
                limit.map(|l| l as usize),
                before.map(|b| b as i64),
            )?))
        })
    }

    /// The messages this browser holds whose text has every word of `query`, newest first:
    /// in every thread, or in `thread_id`'s.
    pub fn search(
        &self,
        query: String,
        thread_id: Option<String>,
        limit: Option<f64>,
    ) -> js_sys::Promise {
        let found = self.inner.search(&query, thread_id.as_deref(), limit);
        promise(async move { Ok(to_js(&found?)) })
    }

    /// All of a thread's shared attributes.
    #[wasm_bindgen(js_name = threadListAttributes)]
    pub fn thread_list_attributes(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.session()?;
            Ok(to_js(&inner.thread(&id)?.attributes))
        })
    }

    #[wasm_bindgen(js_name = threadGetAttribute)]
    pub fn thread_get_attribute(&self, id: String, key: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.session()?;
            Ok(inner
                .thread(&id)?
                .attributes
                .get(&key)
                .map(to_js)
                .unwrap_or(JsValue::UNDEFINED))
        })
    }

    /// Sets (or with `null`, removes) a shared attribute on every member's devices.
    #[wasm_bindgen(js_name = threadSetAttribute)]
    pub fn thread_set_attribute(&self, id: String, key: String, value: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let value = js_value(&value)?;
            inner.set_attribute(&id, key, value).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Disappearing messages: every member's devices delete messages `seconds` after they
    /// were sent (0 turns it off).
    #[wasm_bindgen(js_name = threadSetExpiration)]
    pub fn thread_set_expiration(&self, id: String, seconds: f64) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.set_expiration(&id, seconds).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Adds the users of `expr` to the thread.
    #[wasm_bindgen(js_name = threadAmendDistribution)]
    pub fn thread_amend_distribution(&self, id: String, expr: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.change_distribution(&id, &expr, true).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Removes the users of `expr` from the thread.
    #[wasm_bindgen(js_name = threadRepealDistribution)]
    pub fn thread_repeal_distribution(&self, id: String, expr: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.change_distribution(&id, &expr, false).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Adds one user (by ID or `@tag`).
    #[wasm_bindgen(js_name = threadAddMember)]
    pub fn thread_add_member(&self, id: String, user: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let expr = inner.member_expr(&user).await?;
            inner.change_distribution(&id, &expr, true).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Removes one user (by ID or `@tag`).
    #[wasm_bindgen(js_name = threadRemoveMember)]
    pub fn thread_remove_member(&self, id: String, user: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let expr = inner.member_expr(&user).await?;
            inner.change_distribution(&id, &expr, false).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Leaves the thread: the other members stop sending to this user.
    #[wasm_bindgen(js_name = threadLeave)]
    pub fn thread_leave(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.leave(&id).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Marks the thread read up to its newest message and tells its members: for a page
    /// with its own UI (Sotto's UI does it whenever a thread is open).
    #[wasm_bindgen(js_name = threadMarkRead)]
    pub fn thread_mark_read(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.mark_thread_read(&id).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Hides the thread from the list on this device.
    #[wasm_bindgen(js_name = threadArchive)]
    pub fn thread_archive(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.set_archived(&id, true)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = threadRestore)]
    pub fn thread_restore(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.set_archived(&id, false)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Forgets the thread and its messages on this device.
    #[wasm_bindgen(js_name = threadExpunge)]
    pub fn thread_expunge(&self, id: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.expunge(&id).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes messages on this device; resolves to how many were deleted.
    #[wasm_bindgen(js_name = threadDestroyMessages)]
    pub fn thread_destroy_messages(&self, id: String, message_ids: Vec<String>) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.destroy_messages(&id, &message_ids)?.into()) })
    }

    /// Collapses (`true`), expands (`false`) or toggles (no argument) the thread list;
    /// resolves to whether it is now collapsed.
    #[wasm_bindgen(js_name = navPanelToggle)]
    pub fn nav_panel_toggle(&self, collapse: Option<bool>) -> js_sys::Promise {
        let inner = self.inner.clone();
        promise(async move {
            let ui = inner.ui.borrow();
            let ui = ui.as_ref().ok_or_else(|| match inner.options.headless {
                true => ClientError::new("no_ui", "this client has no UI (ui: false)"),
                false => ClientError::new("destroyed", "this client has been destroyed"),
            })?;
            Ok(ui.toggle_nav(collapse).into())
        })
    }

    /// Unmounts the UI and closes the connection; the client cannot be used afterwards.
    pub fn destroy(&self) {
        self.inner.destroyed.set(true);
        self.inner.end_session();
        *self.inner.channel.borrow_mut() = None;
        crate::history::forget("");
        for (target, event, listener) in self.inner.page_listeners.borrow_mut().drain(..) {
            let _ = target
                .remove_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        }
        if let Some(ui) = self.inner.ui.borrow_mut().take() {
            ui.unmount();
        }
    }
}

impl Inner {
    fn emit(&self, kind: &str, detail: JsValue) {
        let _ = self.emit.call2(&JsValue::NULL, &kind.into(), &detail);
    }

    fn emit_error(&self, e: &ClientError) {
        // Background work that outlived a sign-out (a save, a receive) has nothing to report.
        let signed_out = matches!(self.state.borrow().life, lifecycle::Lifecycle::SignedOut);
        if !(signed_out && e.code == "not_signed_in") {
            self.emit("error", e.to_js());
        }
    }

    /// The session token and user, or `not_signed_in`.
    fn session(&self) -> ClientResult<(String, User)> {
        if self.destroyed.get() {
            return Err(ClientError::new(
                "destroyed",
                "this client has been destroyed",
            ));
        }
        match &self.state.borrow().life {
            lifecycle::Lifecycle::Active(s) => Ok((s.token.clone(), s.user.clone())),
            lifecycle::Lifecycle::Expiring(_) => Err(ClientError::new(
                "session_expired",
                "the session has expired; waiting for a new identity token",
            )),
            _ => Err(ClientError::new(
                "not_signed_in",
                "the client is not signed in",
            )),
        }
    }

    fn mount_ui(self: &Rc<Self>) -> ClientResult<()> {
        let weak = Rc::downgrade(self);
        let act = |f: fn(Rc<Inner>, String)| -> Rc<dyn Fn(String)> {
            let weak = weak.clone();
            Rc::new(move |arg: String| {
                if let Some(inner) = weak.upgrade() {
                    f(inner, arg)
                }
            })
        };
        let actions = UiActions {
            send: {
                let weak = weak.clone();
                Rc::new(
                    move |text: String, reply_to: Option<String>, files: Vec<web_sys::File>| {
                        let Some(inner) = weak.upgrade() else { return };
                        spawn_local(async move {
                            let Some(id) = inner.state.borrow().open_thread.clone() else {
                                inner.show_notice(Some("Open or start a thread first."));
                                inner.with_ui(|ui| {
                                    ui.set_draft(None, &text);
                                    ui.files_sent(false);
                                });
                                return;
                            };
                            let with_files = !files.is_empty();
                            let sent = async {
                                // A view hands the Files to the tab that holds the account, in
                                // the page API's order: thread, text, html, files, attrs, options.
                                if with_files {
                                    let options = js_sys::Object::new();
                                    if let Some(r) = &reply_to {
                                        let _ = js_sys::Reflect::set(
                                            &options,
                                            &"replyTo".into(),
                                            &r.into(),
                                        );
                                    }
                                    let picked: js_sys::Array = files.iter().collect();
                                    let none = JsValue::UNDEFINED;
                                    let args = [
                                        id.as_str().into(),
                                        text.as_str().into(),
                                        none.clone(),
                                        picked.into(),
                                        none,
                                        options.into(),
                                    ];
                                    if let Some(sent) =
                                        inner.forwarded("threadSendMessage", &args).await
                                    {
                                        return sent.map(drop);
                                    }
                                }
                                let files = attachments::read_picked(files).await?;
                                let sent = inner.send_message(
                                    &id,
                                    text.clone(),
                                    None,
                                    Default::default(),
                                    files,
                                    reply_to.clone(),
                                );
                                sent.await.map(drop)
                            };
                            let sent = sent.await;
                            if with_files {
                                inner.with_ui(|ui| ui.files_sent(sent.is_ok()));
                            }
                            if let Err(e) = sent {
                                inner.with_ui(|ui| match reply_to {
                                    Some(r) => ui.resume(false, r, &id, &text),
                                    None => ui.set_draft(Some(&id), &text),
                                });
                                inner.show_notice(Some(&e.message));
                                inner.emit_error(&e);
                            }
                        })
                    },
                )
            },
            change: {
                let weak = weak.clone();
                Rc::new(move |act: String, message: String, text: String| {
                    let Some(inner) = weak.upgrade() else { return };
                    if act == "delete" {
                        inner.confirm_delete(message);
                    } else {
                        inner.spawn_change(&act, message, text);
                    }
                })
            },
            open: act(|inner, id| {
                if let Err(e) = inner.thread_open(&id, true) {
                    inner.show_notice(Some(&e.message));
                }
            }),
            search: act(|inner, query| {
                inner.state.borrow_mut().search = query
                    .trim()
                    .chars()
                    .take(crate::search::MAX_QUERY)
                    .collect();
                inner.render();
            }),
            typing: {
                let weak = weak.clone();
                Rc::new(move |typing: bool| {
                    let Some(inner) = weak.upgrade() else { return };
                    let Some(id) = inner.state.borrow().open_thread.clone() else {
                        return;
                    };
                    // Best effort: a notice that cannot go is not worth a word.
                    spawn_local(async move {
                        let _ = inner.send_typing(&id, typing).await;
                    });
                })
            },
            new_thread: act(|inner, expr| {
                spawn_local(async move {
                    // The people's newest thread, if there is one: "New topic" makes another.
                    match inner.thread_ensure(&expr, Default::default()).await {
                        Ok(id) => {
                            inner.with_ui(|ui| ui.new_thread_done(None));
                            // A view reads the thread the holder has just saved.
                            inner.reload_view().await;
                            let _ = inner.thread_open(&id, true);
                        }
                        Err(e) => {
                            // About what was typed: by the field, in people's words ("No
                            // one called @nobody", not a position). Anything else (offline,
                            // a limit): the notice, and the field keeps its text.
                            if !e.code.starts_with("expr_") && e.code != "tag_not_available" {
                                inner.with_ui(|ui| ui.new_thread_done(Some("")));
                                inner.show_notice(Some(&e.message));
                                return;
                            }
                            let plain = match e.message.strip_prefix("unknown tag ") {
                                Some(rest) => {
                                    let tag = rest.split(" at ").next().unwrap_or(rest);
                                    ["No one called ", tag].concat()
                                }
                                // The parser's words ("expected '+' or '-' but found ','")
                                // are for developers; people get how to write it.
                                None if e.code.starts_with("expr_") => "Write who to talk to as @name, joined with + (and - to leave someone out).".into(),
                                None => e.message,
                            };
                            inner.with_ui(|ui| ui.new_thread_done(Some(&plain)));
                        }
                    }
                })
            }),
            download: {
                let weak = weak.clone();
                Rc::new(move |message: String, index: usize| {
                    let Some(inner) = weak.upgrade() else { return };
                    spawn_local(async move {
                        if let Err(e) = inner.download(&message, index).await {
                            inner.show_notice(Some(&e.message));
                            inner.emit_error(&e);
                        }
                    })
                })
            },
            verify: {
                let weak = weak.clone();
                Rc::new(move || {
                    let Some(inner) = weak.upgrade() else { return };
                    spawn_local(async move {
                        if let Err(e) = inner.show_safety_numbers().await {
                            inner.show_notice(Some(&e.message));
                        }
                    })
                })
            },
            backup: {
                let weak = weak.clone();
                Rc::new(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.show_backup_dialog(None);
                    }
                })
            },
            rename: {
                let weak = weak.clone();
                Rc::new(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.show_rename_dialog();
                    }
                })
            },
            new_topic: {
                let weak = weak.clone();
                Rc::new(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.show_topic_dialog();
                    }
                })
            },
            redraw: {
                let weak = weak.clone();
                Rc::new(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.render();
                    }
                })
            },
            dismiss: {
                let weak = weak.clone();
                Rc::new(move |user: String, key: bool| {
                    let Some(inner) = weak.upgrade() else { return };
                    if !key {
                        // Seen in this tab; a new device is not stored, and a view's note
                        // must not settle a key change the holder has and it has not shown.
                        let mut state = inner.state.borrow_mut();
                        state.new_devices.retain(|u| *u != user);
                        state.view_marks.1.retain(|u| *u != user);
                        drop(state);
                        return inner.render();
                    }
                    spawn_local(async move {
                        let mut done = inner.acknowledge_identity_change(&user).await;
                        // A contact verified before is still not written to: say so now,
                        // not at the next send.
                        if done.is_ok() && inner.viewing().is_none() {
                            done = inner.with_account(|a| Ok(a.may_send_to(&user)?));
                        }
                        if let Err(e) = done {
                            inner.show_notice(Some(&e.message));
                        }
                    })
                })
            },
        };
        let ui = Ui::mount(&self.host, &self.options.ui, actions)?;
        *self.ui.borrow_mut() = Some(ui);
        Ok(())
    }

    /// Tells the page when a thread's unread count changed: `unreadchange` with `{total,
    /// threads: {id: count}}` (threads with nothing unread left out).
    fn tell_unread(&self) {
        let counts: Vec<(String, u32)> = {
            let mut state = self.state.borrow_mut();
            let counts: Vec<(String, u32)> = state
                .threads
                .iter()
                .filter(|t| t.unread > 0)
                .map(|t| (t.id.clone(), t.unread))
                .collect();
            if counts == state.unread_told {
                return;
            }
            state.unread_told = counts.clone();
            counts
        };
        let threads = js_sys::Object::new();
        for (id, n) in &counts {
            let _ = js_sys::Reflect::set(&threads, &id.into(), &(*n).into());
        }
        let detail = js_sys::Object::new();
        let total: u32 = counts.iter().map(|(_, n)| n).sum();
        let _ = js_sys::Reflect::set(&detail, &"total".into(), &total.into());
        let _ = js_sys::Reflect::set(&detail, &"threads".into(), &threads);
        self.emit("unreadchange", detail.into());
    }

    fn with_ui(&self, f: impl FnOnce(&Ui)) {
        if let Some(ui) = self.ui.borrow().as_ref() {
            f(ui);
        }
    }

    /// Shows a dialog; a button press calls `on_action` with this client (while it lives)
    /// and the button's action.
    fn show_dialog(
        self: &Rc<Self>,
        content: &crate::dialog::DialogContent<'_>,
        on_action: impl Fn(Rc<Inner>, &str) + 'static,
    ) {
        let weak = Rc::downgrade(self);
        self.with_ui(|ui| {
            let _ = ui.dialog.show(content, move |action| {
                if let Some(inner) = weak.upgrade() {
                    on_action(inner, action);
                }
            });
        });
    }

    fn show_notice(&self, message: Option<&str>) {
        self.with_ui(|ui| ui.notice(message));
    }

    fn render(&self) {
        self.tell_unread();
        let ui = self.ui.borrow();
        let Some(ui) = ui.as_ref() else { return };
        let state = self.state.borrow();
        // Signed in, or reading saved history offline.
        let own = state.life.user();
        let own_id = own.map(|u| u.id.as_str()).unwrap_or("");
        let found = (!state.search.is_empty()).then(|| {
            crate::search::find(
                &state.threads,
                &state.search,
                None,
                crate::search::DEFAULT_RESULTS,
            )
        });
        let _ = ui.render_threads(
            &state.threads,
            state.open_thread.as_deref(),
            own_id,
            found.as_deref(),
        );
        let open = state
            .open_thread
            .as_ref()
            .and_then(|id| state.threads.iter().find(|t| &t.id == id));
        // Stored in the account, so the warning outlives a reload until it is acknowledged;
        // a view shows what the holder's account says (`tab_view.rs`).
        let (changed, new_devices) =
            tab_view::own_marks(&state).unwrap_or_else(|| state.view_marks.clone());
        // One's own name without the visitor's tag others see it by; first, so the thread
        // is drawn for a visitor as one.
        ui.set_user(
            &own.map(|u| u.name.clone().unwrap_or_else(|| u.tag.clone()))
                .unwrap_or_default(),
            own.is_some_and(|u| u.ephemeral),
        );
        let _ = ui.render_thread(open, own_id, &changed, &new_devices, &state.unreachable);
        // Saved history shown offline can be read, not written to; a view writes through
        // the tab that holds the account.
        ui.set_read_only(state.life.session().is_none() && state.life.viewing().is_none());
        drop(state);
        self.show_typing();
        self.tell_views_marks(false);
    }
}
