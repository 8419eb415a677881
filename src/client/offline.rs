//! Reading offline: when the server cannot be reached at sign-in, the client shows the
//! history this browser keeps for the user the token names, and keeps trying to sign in.
//!
//! The token cannot be verified offline, so its claims only pick which local history to
//! show — data that is in this browser profile anyway; nothing is sent or decrypted.

use super::Inner;
use crate::history;
use crate::idb::{self, IDENTITIES};
use crate::util::{backoff_ms, sleep};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sotto_core::protocol::User;
use std::rc::Rc;

const RETRY_BASE_MS: f64 = 1_000.0;
const RETRY_MAX_MS: f64 = 30_000.0;

/// The user a token named when it last signed in here.
#[derive(Serialize, Deserialize)]
struct Remembered {
    org: String,
    user: User,
}

/// What a sign-in JWT says about who it is for, read without verifying it.
fn identity(url: &str, jwt: &str) -> Option<String> {
    let payload = Base64UrlUnpadded::decode_vec(jwt.split('.').nth(1)?).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let who = claims
        .get("user")
        .and_then(|u| u.get("id"))
        .and_then(text)
        .map(|id| format!("user:{id}"))
        .or_else(|| claims.get("id").and_then(text).map(|id| format!("id:{id}")))
        .or_else(|| {
            claims
                .get("email")
                .and_then(text)
                .map(|e| format!("email:{e}"))
        })
        .or_else(|| claims.get("sub").and_then(text).map(|s| format!("sub:{s}")))?;
    let org = claims.get("org").and_then(text).unwrap_or_default();
    Some(format!("{url}|{org}|{who}"))
}

impl Inner {
    /// Notes which user `jwt` signed in as, for the offline view next time.
    pub(super) async fn remember_identity(&self, jwt: &str) {
        let Some(key) = identity(&self.options.url, jwt) else {
            return;
        };
        let remembered = {
            let state = self.state.borrow();
            let Some(s) = state.life.session() else {
                return;
            };
            Remembered {
                org: s.org.clone(),
                user: s.user.clone(),
            }
        };
        if let Ok(json) = serde_json::to_string(&remembered) {
            let _ = idb::put(IDENTITIES, &key, &json.into()).await;
        }
    }

    /// Shows the saved history of the user `jwt` names, if there is any; true if shown.
    pub(super) async fn show_offline(self: &Rc<Self>, jwt: &str) -> bool {
        let Some(key) = identity(&self.options.url, jwt) else {
            return false;
        };
        let Ok(value) = idb::get(IDENTITIES, &key).await else {
            return false;
        };
        let Some(remembered) = value
            .as_string()
            .and_then(|j| serde_json::from_slice::<Remembered>(j.as_bytes()).ok())
        else {
            return false;
        };
        let store_key = format!(
            "{}|{}|{}",
            self.options.url, remembered.org, remembered.user.id
        );
        let Ok(threads) = history::load(&store_key).await else {
            return false;
        };
        {
            let mut state = self.state.borrow_mut();
            if state.life.session().is_some() {
                return false;
            }
            state.threads = threads;
            state.life = super::lifecycle::Lifecycle::SavedHistory(remembered.user);
        }
        self.render();
        self.with_ui(|ui| ui.set_status("Offline"));
        self.show_notice(Some(
            "The server cannot be reached: showing the history saved in this browser.",
        ));
        true
    }

    /// Tries to sign in again with `jwt` until it works (or fails for another reason than
    /// the network), waiting longer each time.
    pub(super) async fn retry_sign_in(self: Rc<Self>, jwt: String, epoch: u32) {
        let mut attempt = 0;
        loop {
            sleep(backoff_ms(
                attempt,
                RETRY_BASE_MS,
                RETRY_MAX_MS,
                js_sys::Math::random(),
            ))
            .await;
            attempt += 1;
            if self.destroyed.get() || self.state.borrow().epoch != epoch {
                return;
            }
            match self.sign_in_jwt(jwt.clone()).await {
                Ok(()) => return,
                Err(e) if e.code == "network" => continue,
                Err(e) => {
                    self.show_notice(Some(&format!("Sign-in failed: {}", e.message)));
                    self.emit_error(&e);
                    return;
                }
            }
        }
    }
}
