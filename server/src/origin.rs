//! Which web origins may use the API from a browser: those configured, and the server's own.

use crate::config::Config;
use axum::http::{header, HeaderMap};

/// True when the request carries no `Origin` (not a browser), comes from the page the
/// server itself serves, or from a configured origin (`*` allows any).
pub fn origin_allowed(config: &Config, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if config
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o == origin)
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    host.is_some() && origin_host == host
}
