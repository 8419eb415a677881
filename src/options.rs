//! Reading the `auth` and `options` objects that the page passes to `new sotto.Client`.

use crate::error::{ClientError, ClientResult};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

/// How this client signs in.
#[derive(Debug, Clone)]
pub enum Auth {
    Jwt(String),
    Ephemeral {
        token: String,
        name: Option<String>,
        email: Option<String>,
    },
}

/// The options that the skeleton understands; unknown ones are ignored.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the Sotto server, without a trailing slash.
    pub url: String,
    pub org: Option<String>,
    pub show_nav: bool,
    pub show_header: bool,
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn string(obj: &JsValue, key: &str) -> ClientResult<Option<String>> {
    let v = get(obj, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| ClientError::new("bad_option", format!("{key} must be a string")))
}

fn boolean(obj: &JsValue, key: &str, default: bool) -> bool {
    get(obj, key).as_bool().unwrap_or(default)
}

pub fn parse_auth(auth: &JsValue, options: &JsValue) -> ClientResult<Auth> {
    if !auth.is_object() {
        return Err(ClientError::new(
            "bad_auth",
            "auth must be an object such as {jwt} or {orgEphemeralToken}",
        ));
    }
    if let Some(jwt) = string(auth, "jwt")? {
        return Ok(Auth::Jwt(jwt));
    }
    if let Some(token) = string(auth, "orgEphemeralToken")? {
        // Visitor details may come with the auth (`user`) or as `options.ephemeralUserInfo`.
        let mut info = get(auth, "user");
        if !info.is_object() {
            info = get(options, "ephemeralUserInfo");
        }
        let name = match (
            string(&info, "name")?,
            string(&info, "firstName")?,
            string(&info, "lastName")?,
        ) {
            (Some(n), _, _) => Some(n),
            (None, Some(f), l) => Some(match l {
                Some(l) => format!("{f} {l}"),
                None => f,
            }),
            _ => None,
        };
        return Ok(Auth::Ephemeral {
            token,
            name,
            email: string(&info, "email")?,
        });
    }
    let keys: Vec<String> = Reflect::own_keys(auth)
        .map(|a| a.iter().filter_map(|k| k.as_string()).collect())
        .unwrap_or_default();
    Err(ClientError::new(
        "bad_auth",
        format!(
            "auth needs jwt or orgEphemeralToken (got: {})",
            keys.join(", ")
        ),
    ))
}

pub fn parse_options(options: &JsValue) -> ClientResult<Options> {
    let url = string(options, "url")?.ok_or_else(|| {
        ClientError::new("bad_option", "options.url (the Sotto server) is required")
    })?;
    Ok(Options {
        url: url.trim_end_matches('/').to_owned(),
        org: string(options, "org")?,
        show_nav: boolean(options, "showNav", true),
        show_header: boolean(options, "showHeader", true),
    })
}
