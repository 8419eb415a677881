//! This browser's secrets at rest. Each user's [`Account`] (identity, prekeys, sessions,
//! sender keys) is stored in IndexedDB (store `devices`, under `server|org|user`) only as
//! AES-256-GCM ciphertext — and so is their history (`crate::history`) — under a WebCrypto
//! key that is *non-extractable*: the key lives in
//! IndexedDB too (store `keys`), but script — ours or an injected one — can only ask the
//! browser to use it, never read it, so a copy of the database files alone opens nothing.
//! Every write uses a fresh random 96-bit IV.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::idb::{self, DEVICES, KEYS};
use crate::util::window;
use js_sys::{Array, Object, Reflect, Uint8Array};
use sotto_core::account::Account;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, AesKeyGenParams, CryptoKey, SubtleCrypto};
use zeroize::Zeroizing;

const WRAP_KEY: &str = "wrap";

/// A stored account and the device ID the server gave it (absent until registered).
pub struct StoredAccount {
    pub device_id: Option<String>,
    pub account: Account,
    /// A newly generated identity, which may replace the one the server publishes for the
    /// user; a stored one never does (it was replaced elsewhere).
    pub new_identity: bool,
}

fn subtle() -> ClientResult<SubtleCrypto> {
    Ok(window()?
        .crypto()
        .map_err(|e| js_failure("storage", e))?
        .subtle())
}

fn storage(message: &str) -> ClientError {
    ClientError::new("storage", message)
}

thread_local! {
    /// The key, read (or made) once: every save encrypts with it, and callers that come
    /// while it is being made wait for the same one instead of making a second.
    static WRAP: std::cell::RefCell<Option<js_sys::Promise>> = const { std::cell::RefCell::new(None) };
}

/// The non-extractable key that encrypts this origin's secrets, made on first use.
async fn wrap_key() -> ClientResult<CryptoKey> {
    let pending = WRAP.with(|w| {
        w.borrow_mut()
            .get_or_insert_with(|| {
                wasm_bindgen_futures::future_to_promise(async {
                    load_or_make_wrap_key()
                        .await
                        .map(JsValue::from)
                        .map_err(|e| e.to_js())
                })
            })
            .clone()
    });
    match JsFuture::from(pending).await {
        Ok(key) => Ok(key.unchecked_into()),
        Err(e) => {
            // Let the next call try again.
            WRAP.with(|w| w.borrow_mut().take());
            Err(js_failure("storage", e))
        }
    }
}

async fn load_or_make_wrap_key() -> ClientResult<CryptoKey> {
    let existing = idb::get(KEYS, WRAP_KEY).await?;
    if let Ok(key) = existing.dyn_into::<CryptoKey>() {
        return Ok(key);
    }
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let params = AesKeyGenParams::new("AES-GCM", 256);
    let promise = subtle()?
        .generate_key_with_object(&params, false, &usages)
        .map_err(|e| js_failure("storage", e))?;
    let key: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(|e| js_failure("storage", e))?
        .unchecked_into();
    idb::put(KEYS, WRAP_KEY, &key).await?;
    Ok(key)
}

/// Encrypts `plaintext` under this origin's non-extractable key: `(iv, ciphertext)`.
pub async fn encrypt(plaintext: &[u8]) -> ClientResult<(Vec<u8>, Vec<u8>)> {
    let key = wrap_key().await?;
    let mut iv = [0u8; 12];
    sotto_core::error::random_bytes(&mut iv)?;
    let iv_js = Uint8Array::from(&iv[..]);
    let params = AesGcmParams::new("AES-GCM", &iv_js);
    let data = Uint8Array::from(plaintext);
    let promise = subtle()?
        .encrypt_with_object_and_buffer_source(&params, &key, &data)
        .map_err(|e| js_failure("storage", e))?;
    // The plaintext copy handed to the browser is overwritten once it has been used.
    let result = JsFuture::from(promise).await;
    data.fill(0, 0, data.length());
    let ct = result.map_err(|e| js_failure("storage", e))?;
    Ok((iv.to_vec(), Uint8Array::new(&ct).to_vec()))
}

/// Decrypts what [`encrypt`] made.
pub async fn decrypt(iv: &[u8], ciphertext: &[u8]) -> ClientResult<Zeroizing<Vec<u8>>> {
    let key = wrap_key().await?;
    let iv_js = Uint8Array::from(iv);
    let params = AesGcmParams::new("AES-GCM", &iv_js);
    let promise = subtle()?
        .decrypt_with_object_and_buffer_source(&params, &key, &Uint8Array::from(ciphertext))
        .map_err(|e| js_failure("storage", e))?;
    let pt = JsFuture::from(promise)
        .await
        .map_err(|_| storage("this browser's stored keys could not be decrypted"))?;
    let view = Uint8Array::new(&pt);
    let out = Zeroizing::new(view.to_vec());
    view.fill(0, 0, view.length());
    Ok(out)
}

/// `{iv, data}` as stored: what [`encrypt`] made.
pub fn sealed_record(iv: &[u8], data: &[u8]) -> ClientResult<Object> {
    let value = Object::new();
    Reflect::set(&value, &"iv".into(), &Uint8Array::from(iv).into())
        .map_err(|e| js_failure("storage", e))?;
    Reflect::set(&value, &"data".into(), &Uint8Array::from(data).into())
        .map_err(|e| js_failure("storage", e))?;
    Ok(value)
}

/// The `(iv, data)` of a record made by [`sealed_record`].
pub fn sealed_parts(value: &JsValue) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((bytes_field(value, "iv")?, bytes_field(value, "data")?))
}

fn bytes_field(value: &JsValue, name: &str) -> Option<Vec<u8>> {
    Reflect::get(value, &name.into())
        .ok()?
        .dyn_into::<Uint8Array>()
        .ok()
        .map(|a| a.to_vec())
}

pub async fn load(key: &str) -> ClientResult<Option<StoredAccount>> {
    let value = idb::get(DEVICES, key).await?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    // A record from before encrypted storage (protocol 1) holds no identity: start afresh.
    let Some((iv, data)) = sealed_parts(&value) else {
        return Ok(None);
    };
    let plaintext = decrypt(&iv, &data).await?;
    // Sotto 0.1 stored the account as JSON. Reading it would take the JSON code for every
    // account type back into the wasm (12 KB gzip), so such a browser starts again as a new
    // one: it links to another device of the user, restores a backup or takes a new identity.
    if plaintext.first() == Some(&b'{') {
        web_sys::console::warn_1(
            &"sotto: keys stored by Sotto 0.1 are not read; this browser starts as a new device"
                .into(),
        );
        return Ok(None);
    }
    let account =
        Account::from_record(&plaintext).map_err(|_| storage("the stored keys are damaged"))?;
    let device_id = Reflect::get(&value, &"deviceId".into())
        .ok()
        .and_then(|v| v.as_string());
    Ok(Some(StoredAccount {
        device_id,
        account,
        new_identity: false,
    }))
}

/// Serializes `account` (call this with the state borrowed) for [`save_serialized`].
pub fn serialize(account: &Account) -> ClientResult<Zeroizing<Vec<u8>>> {
    Ok(account.to_record())
}

pub async fn save_serialized(
    key: &str,
    device_id: Option<&str>,
    plaintext: &[u8],
) -> ClientResult<()> {
    let (iv, data) = encrypt(plaintext).await?;
    let value = sealed_record(&iv, &data)?;
    if let Some(id) = device_id {
        Reflect::set(&value, &"deviceId".into(), &id.into())
            .map_err(|e| js_failure("storage", e))?;
    }
    idb::put(DEVICES, key, &value).await
}

/// Where Sotto 0.1's record of `key` is kept once found: encrypted as it was, so nothing
/// of it is lost, and out of the way of the new record.
fn set_aside(key: &str) -> String {
    format!("{key}|0.1")
}

/// The server's device ID in Sotto 0.1's record of `key`, if one was set aside: that device
/// can no longer open anything, so the new device takes it off the user's list.
pub async fn device_set_aside(key: &str) -> Option<String> {
    let value = idb::get(DEVICES, &set_aside(key)).await.ok()?;
    Reflect::get(&value, &"deviceId".into()).ok()?.as_string()
}

/// Forgets a stored account (its keys are gone from this browser for good).
pub async fn remove(key: &str) -> ClientResult<()> {
    idb::delete(DEVICES, key).await
}
