//! A tab that waits for the account (see `tab_lock.rs`) is a view over the tab that holds
//! it: it shows the same threads, read from the history the holder saves, and everything
//! its UI does goes through the page API, which the JS shell (`js/client.js`) forwards to
//! the holder over a BroadcastChannel. So one tab writes the ratchets, and every tab shows
//! and sends.
//!
//! The holder posts `saved <store key>` on the origin's channel after each history write;
//! a view of that account then reads the history again. Views never write: they hold no
//! account and no `store_key`, so `save_now` has nowhere to write to.

use super::Inner;
use crate::error::{ClientError, ClientResult};
use js_sys::{Array, Promise, Reflect};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

impl Inner {
    /// The account this tab shows while another tab holds it, if it is a view.
    pub(super) fn viewing(&self) -> Option<String> {
        self.state.borrow().life.viewing().map(str::to_owned)
    }

    /// In a view, `method(...args)` of the page API (which the holder answers); `None`
    /// when this tab holds the account and does the work itself.
    pub(super) async fn forwarded(
        &self,
        method: &str,
        args: &[JsValue],
    ) -> Option<ClientResult<JsValue>> {
        self.viewing()?;
        let call: Array = std::iter::once(JsValue::from(method))
            .chain(args.iter().cloned())
            .collect();
        let result = async {
            let p = self
                .emit
                .call2(&JsValue::NULL, &"_call".into(), &call)
                .map_err(from_js)?;
            JsFuture::from(Promise::resolve(&p)).await.map_err(from_js)
        };
        Some(result.await)
    }

    /// Reads the viewed account's history again and shows it. When it returns, what is
    /// shown is at least as new as what was saved when it was called. A read that ends after
    /// a newer one was shown is dropped, so a slow read never puts older history on screen.
    pub(super) async fn reload_view(self: &Rc<Self>) {
        let Some(key) = self.viewing() else { return };
        let turn = {
            let mut state = self.state.borrow_mut();
            state.view_reloads += 1;
            state.view_reloads
        };
        let Ok(threads) = crate::history::load(&key).await else {
            return;
        };
        {
            let mut state = self.state.borrow_mut();
            if state.view_shown >= turn || state.life.viewing() != Some(&key) {
                return;
            }
            state.view_shown = turn;
            state.threads = threads;
        }
        // The thread open here stays open, and what came into it is read if this tab is on
        // screen (the holder keeps its own count and tells the members).
        self.read_open_thread();
    }

    /// The holder tells its views which contacts' keys changed and who added a device
    /// (shown in the thread header), when that changes or a view says `hello`.
    /// `always` tells them even if nothing changed since the last time.
    pub(super) fn tell_views_marks(&self, always: bool) {
        let (key, marks) = {
            let mut state = self.state.borrow_mut();
            let (Some(marks), Some(key)) = (own_marks(&state), state.store_key.clone()) else {
                return;
            };
            if !always && state.view_marks == marks {
                return;
            }
            state.view_marks = marks.clone();
            (key, marks)
        };
        if let Ok(json) = serde_json::to_string(&marks) {
            self.post_to_tabs(&format!("marks {key}\n{json}"));
        }
    }

    /// What another tab posted about this account: a view asking (`hello`), or the
    /// holder's marks for a view.
    pub(super) fn hear_about_account(self: &Rc<Self>, message: &str) {
        let (key, marks) = message.split_once('\n').unwrap_or((message, ""));
        if let Some(key) = key.strip_prefix("hello ") {
            if self.state.borrow().store_key.as_deref() == Some(key) {
                self.tell_views_marks(true);
            }
        } else if let Some(key) = key.strip_prefix("typing ") {
            // The holder's word on who types: a view shows it as its own.
            let mut rest = marks.split('\n');
            if let (Some(thread), Some(user), Some(on)) = (rest.next(), rest.next(), rest.next()) {
                if self.viewing().as_deref() == Some(key) {
                    self.on_typing(thread, user, on == "1");
                }
            }
        } else if let Some(key) = key.strip_prefix("marks ") {
            if self.viewing().as_deref() != Some(key) {
                return;
            }
            if let Ok(marks) = serde_json::from_slice(marks.as_bytes()) {
                self.state.borrow_mut().view_marks = marks;
                self.render();
            }
        }
    }

    /// Tells the other tabs of the origin that this account's history changed.
    pub(super) fn tell_views(&self, store_key: &str) {
        self.post_to_tabs(&format!("saved {store_key}"));
    }
}

/// The identity warnings and new devices the holder's thread header shows, if this tab
/// holds an account (a view shows the holder's, from `view_marks`).
pub(super) fn own_marks(state: &super::State) -> Option<(Vec<String>, Vec<String>)> {
    let account = state.account.as_ref()?;
    let warnings = account.identity_warnings().map(str::to_owned).collect();
    Some((warnings, state.new_devices.clone()))
}

/// A rejection from the page API as a `ClientError`, keeping its `code`.
fn from_js(e: JsValue) -> ClientError {
    let code = Reflect::get(&e, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .unwrap_or_else(|| "internal".into());
    crate::error::js_failure(&code, e)
}
