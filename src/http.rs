//! The server's API over `fetch`. A non-2xx answer becomes a [`ClientError`] with the
//! server's own `{error: {code, message}}`.

use crate::error::{js_failure, ClientError, ClientResult};
use crate::util::window;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sotto_core::protocol::ErrorBody;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// Sends one request and returns the response if it is a success.
async fn fetch(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, JsValue)>,
) -> ClientResult<Response> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|e| js_failure("network", e))?;
    if let Some(t) = token {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .map_err(|e| js_failure("network", e))?;
    }
    if let Some((content_type, data)) = body {
        headers
            .set("Content-Type", content_type)
            .map_err(|e| js_failure("network", e))?;
        init.set_body(&data);
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(&format!("{base}{path}"), &init)
        .map_err(|e| js_failure("bad_option", e))?;
    let response: Response = JsFuture::from(window()?.fetch_with_request(&request))
        .await
        .map_err(|e| js_failure("network", e))?
        .unchecked_into();
    if response.ok() {
        return Ok(response);
    }
    let text = text_of(&response).await.unwrap_or_default();
    Err(match serde_json::from_slice::<ErrorBody>(text.as_bytes()) {
        Ok(b) => ClientError::new(&b.error.code, b.error.message),
        Err(_) => ClientError::new(
            "http_error",
            format!("the server answered {}", response.status()),
        ),
    })
}

async fn text_of(response: &Response) -> ClientResult<String> {
    let promise = response.text().map_err(|e| js_failure("network", e))?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(|e| js_failure("network", e))?
        .as_string()
        .unwrap_or_default())
}

/// Calls `method path` on the server at `base`, with a JSON body when given; the answer's
/// text. Not generic, so there is one copy of it in the wasm; see [`to_json`], [`parse`].
pub async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<String>,
) -> ClientResult<String> {
    let body = json.map(|j| ("application/json", JsValue::from(j)));
    let response = fetch(base, method, path, token, body).await?;
    text_of(&response).await
}

pub fn to_json<B: Serialize>(body: &B) -> ClientResult<String> {
    serde_json::to_string(body).map_err(|e| failed("internal", e))
}

pub fn parse<R: DeserializeOwned>(text: &str) -> ClientResult<R> {
    serde_json::from_slice(text.as_bytes()).map_err(|e| failed("bad_response", e))
}

/// The error of either, out of line: [`to_json`] and [`parse`] (and other generic JSON
/// readers and writers) have a copy per type.
#[inline(never)]
pub fn failed(code: &str, e: serde_json::Error) -> ClientError {
    ClientError::new(code, e.to_string())
}

/// Posts raw bytes (an encrypted attachment); the answer is JSON.
pub async fn post_bytes<R: DeserializeOwned>(
    base: &str,
    path: &str,
    token: &str,
    bytes: &[u8],
) -> ClientResult<R> {
    let data = js_sys::Uint8Array::from(bytes);
    let response = fetch(
        base,
        "POST",
        path,
        Some(token),
        Some(("application/octet-stream", data.into())),
    )
    .await?;
    parse(&text_of(&response).await?)
}

/// Gets raw bytes (an encrypted attachment).
pub async fn get_bytes(base: &str, path: &str, token: &str) -> ClientResult<Vec<u8>> {
    let response = fetch(base, "GET", path, Some(token), None).await?;
    let promise = response
        .array_buffer()
        .map_err(|e| js_failure("network", e))?;
    let buffer = JsFuture::from(promise)
        .await
        .map_err(|e| js_failure("network", e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
