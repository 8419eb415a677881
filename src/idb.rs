//! IndexedDB, as the client uses it: one database `sotto` with a store per kind of record,
//! and requests turned into futures.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::util::window;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "sotto";
/// Version 1 had `devices`; version 2 adds `threads`; version 3 adds `identities`; version 4
/// adds `keys`.
const DB_VERSION: u32 = 4;
/// Each user's encrypted account (identity, prekeys, sessions), by `server|org|user`.
pub const DEVICES: &str = "devices";
/// Threads with their messages, by `server|org|user|thread`.
pub const THREADS: &str = "threads";
/// Which user a sign-in token named last time, so history can be shown offline.
pub const IDENTITIES: &str = "identities";
/// The non-extractable WebCrypto key that encrypts `devices` records.
pub const KEYS: &str = "keys";

/// Waits until `tx` has committed (or fails if it aborts).
async fn committed(tx: &web_sys::IdbTransaction) -> ClientResult<()> {
    let promise = Promise::new(&mut |resolve, reject| {
        let done = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        // An error is followed by an abort; the first to come rejects.
        let on_abort = Closure::once_into_js(move || {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str("the write was aborted"));
        });
        tx.set_oncomplete(Some(done.unchecked_ref()));
        tx.set_onabort(Some(on_abort.unchecked_ref()));
    });
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| js_failure("storage", e))
}

/// Waits for an IndexedDB request and returns its result.
pub async fn finished(req: &IdbRequest) -> ClientResult<JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        let ok = req.clone();
        let on_success = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &ok.result().unwrap_or(JsValue::UNDEFINED));
        });
        let bad = req.clone();
        let on_error = Closure::once_into_js(move || {
            let err = bad
                .error()
                .ok()
                .flatten()
                .map(JsValue::from)
                .unwrap_or(JsValue::NULL);
            let _ = reject.call1(&JsValue::NULL, &err);
        });
        req.set_onsuccess(Some(on_success.unchecked_ref()));
        req.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise)
        .await
        .map_err(|e| js_failure("storage", e))
}

thread_local! {
    /// The open database, reused by every request: opening costs milliseconds each time.
    static OPEN: std::cell::RefCell<Option<IdbDatabase>> = const { std::cell::RefCell::new(None) };
}

/// The database, opened (and upgraded) on first use and kept open until another tab needs
/// to upgrade it or the browser closes it.
async fn open() -> ClientResult<IdbDatabase> {
    if let Some(db) = OPEN.with(|o| o.borrow().clone()) {
        return Ok(db);
    }
    let db = open_new().await?;
    let closing = db.clone();
    let on_versionchange = Closure::<dyn FnMut()>::new(move || {
        closing.close();
        OPEN.with(|o| o.borrow_mut().take());
    });
    db.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
    let on_close = Closure::<dyn FnMut()>::new(move || {
        OPEN.with(|o| o.borrow_mut().take());
    });
    db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    // The handlers live as long as the page.
    on_versionchange.forget();
    on_close.forget();
    OPEN.with(|o| *o.borrow_mut() = Some(db.clone()));
    Ok(db)
}

async fn open_new() -> ClientResult<IdbDatabase> {
    let factory = window()?
        .indexed_db()
        .map_err(|e| js_failure("storage", e))?
        .ok_or_else(|| ClientError::new("storage", "IndexedDB is not available in this browser"))?;
    let req = factory
        .open_with_u32(DB_NAME, DB_VERSION)
        .map_err(|e| js_failure("storage", e))?;
    let upgrading = req.clone();
    let on_upgrade = Closure::once_into_js(move || {
        if let Ok(db) = upgrading.result() {
            let db: IdbDatabase = db.unchecked_into();
            for store in [DEVICES, THREADS, IDENTITIES, KEYS] {
                if !db.object_store_names().contains(store) {
                    let _ = db.create_object_store(store);
                }
            }
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    Ok(finished(&req).await?.unchecked_into())
}

/// Runs one request on `store` in its own transaction and returns its result.
async fn on_store(
    store: &str,
    mode: IdbTransactionMode,
    make: impl FnOnce(&IdbObjectStore) -> Result<IdbRequest, JsValue>,
) -> ClientResult<JsValue> {
    let db = open().await?;
    let result = async {
        let tx = db
            .transaction_with_str_and_mode(store, mode)
            .map_err(|e| js_failure("storage", e))?;
        let os = tx
            .object_store(store)
            .map_err(|e| js_failure("storage", e))?;
        let value = finished(&make(&os).map_err(|e| js_failure("storage", e))?).await?;
        if mode == IdbTransactionMode::Readwrite {
            // A write counts once its transaction has committed, not when the request ran.
            committed(&tx).await?;
        }
        Ok(value)
    }
    .await;
    result
}

/// Keys from `prefix|` up to the end of that prefix.
pub fn prefix_range(prefix: &str) -> ClientResult<IdbKeyRange> {
    IdbKeyRange::bound(
        &format!("{prefix}|").into(),
        &format!("{prefix}|\u{10FFFF}").into(),
    )
    .map_err(|e| js_failure("storage", e))
}

pub async fn get(store: &str, key: &str) -> ClientResult<JsValue> {
    on_store(store, IdbTransactionMode::Readonly, |s| s.get(&key.into())).await
}

pub async fn put(store: &str, key: &str, value: &JsValue) -> ClientResult<()> {
    on_store(store, IdbTransactionMode::Readwrite, |s| {
        s.put_with_key(value, &key.into())
    })
    .await?;
    Ok(())
}

pub async fn delete(store: &str, key: &str) -> ClientResult<()> {
    on_store(store, IdbTransactionMode::Readwrite, |s| {
        s.delete(&key.into())
    })
    .await?;
    Ok(())
}

/// Puts `puts` and deletes `deletes` (keys or key ranges) in one transaction: all or none.
pub async fn write_all(
    store: &str,
    puts: &[(String, JsValue)],
    deletes: &[JsValue],
) -> ClientResult<()> {
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
        .map_err(|e| js_failure("storage", e))?;
    let os = tx
        .object_store(store)
        .map_err(|e| js_failure("storage", e))?;
    let queued = puts
        .iter()
        .try_for_each(|(key, value)| os.put_with_key(value, &key.into()).map(drop))
        .and_then(|()| deletes.iter().try_for_each(|key| os.delete(key).map(drop)));
    if let Err(e) = queued {
        // Nothing of a write that could not be queued whole is kept.
        let _ = tx.abort();
        return Err(js_failure("storage", e));
    }
    committed(&tx).await
}

/// Every value whose key starts with `prefix|`.
pub async fn get_prefixed(store: &str, prefix: &str) -> ClientResult<Vec<JsValue>> {
    let range = prefix_range(prefix)?;
    let all = on_store(store, IdbTransactionMode::Readonly, |s| {
        s.get_all_with_key(&range)
    })
    .await?;
    Ok(all
        .dyn_into::<js_sys::Array>()
        .map(|a| a.iter().collect())
        .unwrap_or_default())
}

/// Deletes every record whose key starts with `prefix|`.
pub async fn delete_prefixed(store: &str, prefix: &str) -> ClientResult<()> {
    let range = prefix_range(prefix)?;
    on_store(store, IdbTransactionMode::Readwrite, |s| s.delete(&range)).await?;
    Ok(())
}
