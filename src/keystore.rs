//! This browser's device keys, kept in IndexedDB (store `devices`) under `server|org|user`,
//! so a returning user reuses the device and each user of a shared browser has their own.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::idb::{self, DEVICES};
use js_sys::{Object, Reflect, Uint8Array};
use sotto_core::keys::DeviceKeys;
use wasm_bindgen::JsCast;
use zeroize::Zeroize;

/// A stored device: its server-side ID and its key pair.
pub struct StoredDevice {
    pub device_id: Option<String>,
    pub keys: DeviceKeys,
}

pub async fn load(key: &str) -> ClientResult<Option<StoredDevice>> {
    let value = idb::get(DEVICES, key).await?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let damaged = || ClientError::new("storage", "the stored device key is damaged");
    let secret: Uint8Array = Reflect::get(&value, &"secret".into())
        .map_err(|e| js_failure("storage", e))?
        .dyn_into()
        .map_err(|_| damaged())?;
    if secret.length() != 32 {
        return Err(damaged());
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
    let value = Object::new();
    let secret = device.keys.secret_bytes();
    Reflect::set(&value, &"secret".into(), &Uint8Array::from(&secret[..]))
        .map_err(|e| js_failure("storage", e))?;
    if let Some(id) = &device.device_id {
        Reflect::set(&value, &"deviceId".into(), &id.into())
            .map_err(|e| js_failure("storage", e))?;
    }
    idb::put(DEVICES, key, &value).await
}

/// Forgets a stored device (its key is gone from this browser for good).
pub async fn remove(key: &str) -> ClientResult<()> {
    idb::delete(DEVICES, key).await
}
