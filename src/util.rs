//! Small helpers shared by the client's modules.

use crate::error::{ClientError, ClientResult};

/// A random 128-bit identifier in hex, for messages and threads.
pub fn random_id() -> ClientResult<String> {
    let mut bytes = [0u8; 16];
    sotto_core::error::random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Unix milliseconds by this browser's clock.
pub fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

pub fn window() -> ClientResult<web_sys::Window> {
    web_sys::window().ok_or_else(|| ClientError::new("no_window", "Sotto runs in a browser window"))
}
