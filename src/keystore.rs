//! This browser's device keys, kept in IndexedDB (database `sotto`, store `devices`) under
//! `server|org|user`, so a returning user reuses the device and each user of a shared
//! browser has their own.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::util::window;
use js_sys::{Object, Promise, Reflect, Uint8Array};
use sotto_core::keys::DeviceKeys;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};
use zeroize::Zeroize;

const DB_NAME: &str = "sotto";
const STORE: &str = "devices";

/// Waits for an IndexedDB request and returns its result.
async fn finished(req: &IdbRequest) -> ClientResult<JsValue> {
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

async fn open() -> ClientResult<IdbDatabase> {
    let factory = window()?
        .indexed_db()
        .map_err(|e| js_failure("storage", e))?
        .ok_or_else(|| ClientError::new("storage", "IndexedDB is not available in this browser"))?;
    let req = factory
        .open_with_u32(DB_NAME, 1)
        .map_err(|e| js_failure("storage", e))?;
    let upgrading = req.clone();
    let on_upgrade = Closure::once_into_js(move || {
        if let Ok(db) = upgrading.result() {
            let db: IdbDatabase = db.unchecked_into();
            if !db.object_store_names().contains(STORE) {
                let _ = db.create_object_store(STORE);
            }
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    Ok(finished(&req).await?.unchecked_into())
}

/// A stored device: its server-side ID and its key pair.
pub struct StoredDevice {
    pub device_id: Option<String>,
    pub keys: DeviceKeys,
}

pub async fn load(key: &str) -> ClientResult<Option<StoredDevice>> {
    let db = open().await?;
    let tx = db
        .transaction_with_str(STORE)
        .map_err(|e| js_failure("storage", e))?;
    let store = tx
        .object_store(STORE)
        .map_err(|e| js_failure("storage", e))?;
    let value = finished(
        &store
            .get(&key.into())
            .map_err(|e| js_failure("storage", e))?,
    )
    .await?;
    db.close();
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let secret = Reflect::get(&value, &"secret".into()).map_err(|e| js_failure("storage", e))?;
    let secret: Uint8Array = secret
        .dyn_into()
        .map_err(|_| ClientError::new("storage", "the stored device key is damaged"))?;
    if secret.length() != 32 {
        return Err(ClientError::new(
            "storage",
            "the stored device key is damaged",
        ));
    }
    let mut bytes = [0u8; 32];
    secret.copy_to(&mut bytes);
    let keys = DeviceKeys::from_secret_bytes(bytes);
    bytes.zeroize();
    let device_id = Reflect::get(&value, &"deviceId".into())
        .ok()
        .and_then(|v| v.as_string());
    Ok(Some(StoredDevice { device_id, keys }))
}

pub async fn save(key: &str, device: &StoredDevice) -> ClientResult<()> {
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|e| js_failure("storage", e))?;
    let store = tx
        .object_store(STORE)
        .map_err(|e| js_failure("storage", e))?;
    let value = Object::new();
    let secret = device.keys.secret_bytes();
    Reflect::set(&value, &"secret".into(), &Uint8Array::from(&secret[..]))
        .map_err(|e| js_failure("storage", e))?;
    if let Some(id) = &device.device_id {
        Reflect::set(&value, &"deviceId".into(), &id.into())
            .map_err(|e| js_failure("storage", e))?;
    }
    finished(
        &store
            .put_with_key(&value, &key.into())
            .map_err(|e| js_failure("storage", e))?,
    )
    .await?;
    db.close();
    Ok(())
}

/// Forgets a stored device (its key is gone from this browser for good).
pub async fn remove(key: &str) -> ClientResult<()> {
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|e| js_failure("storage", e))?;
    let store = tx
        .object_store(STORE)
        .map_err(|e| js_failure("storage", e))?;
    finished(
        &store
            .delete(&key.into())
            .map_err(|e| js_failure("storage", e))?,
    )
    .await?;
    db.close();
    Ok(())
}
