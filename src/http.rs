//! The server's JSON API over `fetch`. A non-2xx answer becomes a [`ClientError`] with the
//! server's own `{error: {code, message}}`.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::util::window;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_core::protocol::ErrorBody;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// Calls `method path` on the server at `base`, with a JSON body when given.
pub async fn call<B: Serialize, R: DeserializeOwned>(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&B>,
) -> ClientResult<R> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|e| js_failure("network", e))?;
    if let Some(t) = token {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .map_err(|e| js_failure("network", e))?;
    }
    if let Some(b) = body {
        let json =
            serde_json::to_string(b).map_err(|e| ClientError::new("internal", e.to_string()))?;
        headers
            .set("Content-Type", "application/json")
            .map_err(|e| js_failure("network", e))?;
        init.set_body(&json.into());
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(&format!("{base}{path}"), &init)
        .map_err(|e| js_failure("bad_option", e))?;
    let response: Response = JsFuture::from(window()?.fetch_with_request(&request))
        .await
        .map_err(|e| js_failure("network", e))?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(|e| js_failure("network", e))?)
        .await
        .map_err(|e| js_failure("network", e))?
        .as_string()
        .unwrap_or_default();
    if !response.ok() {
        return Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => ClientError::new(&b.error.code, b.error.message),
            Err(_) => ClientError::new(
                "http_error",
                format!("the server answered {}", response.status()),
            ),
        });
    }
    serde_json::from_str(&text).map_err(|e| ClientError::new("bad_response", e.to_string()))
}

pub async fn get<R: DeserializeOwned>(base: &str, path: &str, token: &str) -> ClientResult<R> {
    call::<(), R>(base, "GET", path, Some(token), None).await
}

pub async fn post<B: Serialize, R: DeserializeOwned>(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &B,
) -> ClientResult<R> {
    call(base, "POST", path, token, Some(body)).await
}
