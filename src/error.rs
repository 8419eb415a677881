//! `ClientError`: every failure the client reports. It crosses to JavaScript as an `Error`
//! whose `code` property is stable (e.g. `expr_unknown_tag`, `network`, `not_signed_in`).

use js_sys::Reflect;
use sotto_core::CoreError;
use wasm_bindgen::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: String,
    pub message: String,
}

pub type ClientResult<T> = Result<T, ClientError>;

impl ClientError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ClientError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A JavaScript `Error` with `code` set.
    pub fn to_js(&self) -> JsValue {
        let err = js_sys::Error::new(&self.message);
        let _ = Reflect::set(&err, &"code".into(), &self.code.as_str().into());
        err.into()
    }
}

impl From<CoreError> for ClientError {
    fn from(e: CoreError) -> Self {
        ClientError::new(e.code(), e.to_string())
    }
}

impl From<ClientError> for JsValue {
    fn from(e: ClientError) -> Self {
        e.to_js()
    }
}

/// Any exception thrown by a browser API, kept with its message.
pub fn js_failure(code: &str, e: JsValue) -> ClientError {
    let message = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "browser API failure".into());
    ClientError::new(code, message)
}
