//! Which user a verified token names, following the TypingMind convention: `user: {id, email,
//! name, ...}` finds or creates that user; `id` (string or number) or `email` names an
//! existing user (`id` wins when both are present); a plain `sub` finds or creates too.

use crate::auth::jwt::Claims;
use crate::error::ApiError;
use serde_json::Value;

/// What a sign-in asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Find this user by external id, creating it (with these details) if new.
    Upsert {
        external_id: String,
        email: Option<String>,
        name: Option<String>,
        /// False only when the token says `email_verified: false`: the email is then kept
        /// as contact information and never used to find the user.
        email_verified: bool,
    },
    /// An existing user by external id.
    ExistingId(String),
    /// An existing user by email.
    ExistingEmail(String),
}

/// The longest external id, email or name accepted from a token.
const MAX_FIELD: usize = 256;

fn string_or_number(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether a token vouches for its email: unless it says `email_verified: false` (in the
/// user object or at the top level, as OpenID Connect puts it).
fn email_verified(claims: &Claims, user: Option<&serde_json::Map<String, Value>>) -> bool {
    let flag = user
        .and_then(|u| u.get("email_verified"))
        .or_else(|| claims.get("email_verified"));
    // Some identity providers send the flag as a string.
    !matches!(flag, Some(Value::Bool(false)))
        && !matches!(flag, Some(Value::String(s)) if s.eq_ignore_ascii_case("false"))
}

impl Identity {
    pub fn from_claims(claims: &Claims) -> Result<Identity, ApiError> {
        let identity = if let Some(user) = claims.get("user") {
            let obj = user.as_object().ok_or_else(|| {
                ApiError::bad_request("token_bad_user", "the user claim must be an object")
            })?;
            let external_id = obj.get("id").and_then(string_or_number).ok_or_else(|| {
                ApiError::bad_request("token_bad_user", "the user claim needs an id")
            })?;
            Identity::Upsert {
                external_id,
                email: text(obj.get("email")),
                name: text(obj.get("name")),
                email_verified: email_verified(claims, Some(obj)),
            }
        } else if let Some(id) = claims.get("id").and_then(string_or_number) {
            Identity::ExistingId(id)
        } else if let Some(email) = text(claims.get("email")) {
            if !email_verified(claims, None) {
                return Err(ApiError::unauthorized(
                    "token_email_unverified",
                    "the token says its email is not verified, so it cannot name a user",
                ));
            }
            Identity::ExistingEmail(email)
        } else if let Some(sub) = text(claims.get("sub")) {
            Identity::Upsert {
                external_id: sub,
                email: None,
                name: text(claims.get("name")),
                email_verified: false,
            }
        } else {
            return Err(ApiError::bad_request(
                "token_no_identity",
                "the token names no user: give user.id, id, email or sub",
            ));
        };
        identity.check_sizes()?;
        Ok(identity)
    }

    /// What names the account, for per-account limits.
    pub fn key(&self) -> &str {
        match self {
            Identity::Upsert { external_id, .. } => external_id,
            Identity::ExistingId(id) => id,
            Identity::ExistingEmail(email) => email,
        }
    }

    fn check_sizes(&self) -> Result<(), ApiError> {
        let fields: Vec<&str> = match self {
            Identity::Upsert {
                external_id,
                email,
                name,
                ..
            } => [
                Some(external_id.as_str()),
                email.as_deref(),
                name.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Identity::ExistingId(s) | Identity::ExistingEmail(s) => vec![s.as_str()],
        };
        if fields.iter().any(|f| f.len() > MAX_FIELD) {
            return Err(ApiError::bad_request(
                "token_claim_too_long",
                format!("identity claims are limited to {MAX_FIELD} bytes"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(v: Value) -> Result<Identity, ApiError> {
        Identity::from_claims(v.as_object().unwrap())
    }

    #[test]
    fn claims_name_users_as_typingmind_does() {
        assert_eq!(
            id(json!({"id": 1234, "email": "x@y"})).unwrap(),
            Identity::ExistingId("1234".into())
        );
        assert_eq!(
            id(json!({"email": "x@y"})).unwrap(),
            Identity::ExistingEmail("x@y".into())
        );
        assert_eq!(
            id(json!({"user": {"id": "u1", "email": "a@b", "other": 1}})).unwrap(),
            Identity::Upsert {
                external_id: "u1".into(),
                email: Some("a@b".into()),
                email_verified: true,
                name: None
            }
        );
        assert_eq!(
            id(json!({"sub": "s1", "name": "S"})).unwrap(),
            Identity::Upsert {
                external_id: "s1".into(),
                email: None,
                name: Some("S".into()),
                email_verified: false,
            }
        );
        // A token may say its email is not verified: then it is contact information only.
        let unverified = id(json!({"user": {"id": "u1", "email": "a@b", "email_verified": false}}));
        assert!(matches!(
            unverified,
            Ok(Identity::Upsert {
                email_verified: false,
                ..
            })
        ));
        assert_eq!(
            id(json!({"email": "a@b", "email_verified": false}))
                .unwrap_err()
                .code,
            "token_email_unverified"
        );
        assert_eq!(
            id(json!({"email": "a@b", "email_verified": "false"}))
                .unwrap_err()
                .code,
            "token_email_unverified",
            "as some providers send it"
        );
        assert_eq!(id(json!({"exp": 1})).unwrap_err().code, "token_no_identity");
        assert_eq!(
            id(json!({"user": {"email": "a@b"}})).unwrap_err().code,
            "token_bad_user"
        );
        assert_eq!(
            id(json!({"sub": "x".repeat(300)})).unwrap_err().code,
            "token_claim_too_long"
        );
    }
}
