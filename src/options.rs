//! Reading the `auth` and `options` objects that the page passes to `new sotto.Client`.

use crate::error::{ClientError, ClientResult};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

/// How this client signs in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `{jwt}` or `{externalAuthCode}`: a token the site's backend signed.
    Jwt(String),
    /// `{orgEphemeralToken, user?}`: an anonymous visitor.
    Ephemeral {
        token: String,
        name: Option<String>,
        email: Option<String>,
    },
    /// `{tokenProvider}`: an async function that returns a fresh JWT whenever asked.
    Provider(js_sys::Function),
    /// `{}`: wait for `setIdentityToken(jwt)`.
    Later,
}

/// Default of `identityTokenGraceMs`: how long a new token may still rescue an expired session.
pub const DEFAULT_GRACE_MS: f64 = 30_000.0;

/// When a browser without a key for the signed-in user asks the user what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Ask only when the user already has a device elsewhere to import from (default).
    Auto,
    /// Always ask (Forsta's behaviour).
    Prompt,
    /// Never ask: make a new key.
    Generate,
}

/// The options the client understands; unknown ones are ignored.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the Sotto server, without a trailing slash.
    pub url: String,
    pub org: Option<String>,
    pub ui: crate::ui::UiConfig,
    /// `ui: false`: no UI at all, for a page that draws its own from the API and events.
    pub headless: bool,
    /// A thread to open once loaded.
    pub open_thread_id: Option<String>,
    pub grace_ms: f64,
    pub provisioning: Provisioning,
    /// `typing: false`: this client neither tells others that its user types nor shows
    /// when they do.
    pub typing: bool,
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
    if auth.is_undefined() || auth.is_null() {
        return Ok(Auth::Later);
    }
    if !auth.is_object() {
        return Err(ClientError::new(
            "bad_auth",
            "auth must be an object such as {jwt} or {orgEphemeralToken}",
        ));
    }
    if let Some(jwt) = string(auth, "jwt")? {
        return Ok(Auth::Jwt(jwt));
    }
    if let Some(code) = string(auth, "externalAuthCode")? {
        return Ok(Auth::Jwt(code));
    }
    let provider = get(auth, "tokenProvider");
    if !provider.is_undefined() {
        return provider
            .dyn_into::<js_sys::Function>()
            .map(Auth::Provider)
            .map_err(|_| {
                ClientError::new(
                    "bad_auth",
                    "tokenProvider must be a function returning a JWT (or a Promise of one)",
                )
            });
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
    if keys.is_empty() {
        return Ok(Auth::Later);
    }
    Err(ClientError::new(
        "bad_auth",
        format!(
            "auth needs one of jwt, orgEphemeralToken, tokenProvider or externalAuthCode (got: {})",
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
        ui: crate::ui::UiConfig {
            show_nav: boolean(options, "showNav", true),
            show_header: boolean(options, "showHeader", true),
            show_thread_header: boolean(options, "showThreadHeader", true),
            brand: string(options, "brand")?,
            // Canonical already: the JavaScript shell checked it (js/i18n.js).
            locale: string(options, "locale")?.unwrap_or_else(|| "default".into()),
            theme: match string(options, "theme")?.as_deref() {
                None => "light".into(),
                Some(t @ ("light" | "dark" | "auto")) => t.into(),
                Some(other) => {
                    return Err(ClientError::new(
                        "bad_option",
                        format!("theme must be light, dark or auto, not {other:?}"),
                    ))
                }
            },
        },
        headless: !boolean(options, "ui", true),
        open_thread_id: string(options, "openThreadId")?,
        typing: boolean(options, "typing", true),
        grace_ms: match get(options, "identityTokenGraceMs").as_f64() {
            Some(ms) if ms >= 0.0 => ms,
            Some(_) => {
                return Err(ClientError::new(
                    "bad_option",
                    "identityTokenGraceMs must be 0 or more",
                ))
            }
            None => DEFAULT_GRACE_MS,
        },
        provisioning: match string(options, "provisioning")?.as_deref() {
            None | Some("auto") => Provisioning::Auto,
            Some("prompt") => Provisioning::Prompt,
            Some("generate") => Provisioning::Generate,
            Some(other) => {
                return Err(ClientError::new(
                    "bad_option",
                    format!("provisioning must be auto, prompt or generate, not {other:?}"),
                ))
            }
        },
    })
}
