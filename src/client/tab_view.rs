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
        self.state.borrow().waiting_for_tab.clone()
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

    /// Reads the viewed account's history again and shows it. A newer reload started
    /// meanwhile wins, so a slow read never puts older history on screen.
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
            if state.view_reloads != turn || state.waiting_for_tab.as_deref() != Some(&key) {
                return;
            }
            state.threads = threads;
            // The thread open here stays open and read (the holder keeps its own count),
            // also one the holder has made but not saved yet.
            if let Some(id) = state.open_thread.clone() {
                if let Ok(t) = state.thread_mut(&id) {
                    t.unread = 0;
                }
            }
        }
        self.render();
    }

    /// Tells the other tabs of the origin that this account's history changed.
    pub(super) fn tell_views(&self, store_key: &str) {
        self.post_to_tabs(&format!("saved {store_key}"));
    }
}

/// A rejection from the page API as a `ClientError`, keeping its `code`.
fn from_js(e: JsValue) -> ClientError {
    let code = Reflect::get(&e, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .unwrap_or_else(|| "internal".into());
    crate::error::js_failure(&code, e)
}
