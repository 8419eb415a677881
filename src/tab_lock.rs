//! One writer per account: an exclusive Web Lock (`navigator.locks`) per server, org and
//! user, held by the one tab that loads the account, keeps its delivery socket and does
//! all of its cryptography.
//!
//! Two tabs that both advanced the same ratchet would encrypt two plaintexts under one
//! message key, and their stored states would fork. So a second tab of the same person
//! waits for the lock (the page is told, and the tab says so); when the holder closes,
//! signs out or is destroyed, the browser hands the lock on and the waiting tab loads the
//! stored state and carries on. Locks are per origin, as IndexedDB is, so they guard
//! exactly the state that could be shared.

use crate::error::{ClientError, ClientResult};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The lock, held until this is dropped.
pub struct TabLock {
    release: Function,
}

impl Drop for TabLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

fn lock_manager() -> ClientResult<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into())
        .map_err(|_| ClientError::new("unsupported", "no navigator"))?;
    let locks = Reflect::get(&navigator, &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    if locks.is_undefined() {
        return Err(ClientError::new(
            "unsupported",
            "this browser has no Web Locks (navigator.locks); Sotto needs it to run in one tab at a time",
        ));
    }
    Ok(locks)
}

/// Calls `navigator.locks.request(name, options, callback)`; resolves to the held lock, or
/// to `None` when `if_available` and another tab holds it.
async fn request(name: &str, if_available: bool) -> ClientResult<Option<TabLock>> {
    let locks = lock_manager()?;
    let mut release = None;
    let held = Promise::new(&mut |resolve, _| release = Some(resolve));
    let release = release.expect("set by the Promise constructor");
    let mut granted = None;
    let outcome = Promise::new(&mut |resolve, _| granted = Some(resolve));
    let granted = granted.expect("set by the Promise constructor");
    // Runs when the browser grants the lock (with null when `ifAvailable` found it taken);
    // the lock is held until the Promise it returns settles.
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let got = !lock.is_null();
        let _ = granted.call1(&JsValue::NULL, &got.into());
        if got {
            held.into()
        } else {
            JsValue::UNDEFINED
        }
    });
    let options = js_sys::Object::new();
    let _ = Reflect::set(&options, &"ifAvailable".into(), &if_available.into());
    let request: Function = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| ClientError::new("unsupported", "navigator.locks.request is missing"))?;
    let _ = request.call3(&locks, &name.into(), &options, &callback);
    let got = JsFuture::from(outcome)
        .await
        .map_err(|_| ClientError::new("lock_failed", "the tab lock could not be taken"))?;
    Ok(got
        .as_bool()
        .unwrap_or(false)
        .then_some(TabLock { release }))
}

/// Takes the account's lock at once if no other tab holds it.
pub async fn try_acquire(name: &str) -> ClientResult<Option<TabLock>> {
    request(name, true).await
}

/// Waits until the account's lock is free, then takes it.
pub async fn acquire(name: &str) -> ClientResult<TabLock> {
    request(name, false)
        .await?
        .ok_or_else(|| ClientError::new("lock_failed", "the tab lock was not granted"))
}
