//! Operating a Sotto server: what a site's backend and its operators change at run time,
//! through the admin API (`/v1/admin/...`, see `routes/admin.rs`) or the CLI
//! (`sotto-server admin ...`, see `cli.rs`). Both call these functions, each in one
//! transaction that also writes the audit log, so the two can never drift apart.
//!
//! [`api_keys`] (who may call), [`audit`] (who changed what), [`users`] (created before
//! they sign in, disabled, deleted, exported), [`groups`], and [`orgs`] (tenants, their
//! sign-in keys and visitor tokens), [`webhooks`].

pub mod api_keys;
pub mod audit;
pub mod groups;
pub mod orgs;
pub mod users;
pub mod webhooks;

use crate::error::ApiError;
use serde::{Deserialize, Serialize};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// A site's backend: users and groups.
    Backend,
    /// Everything in its org (or, for a key of no org, in every org): also sign-in keys,
    /// visitor tokens, API keys, the org's settings and the audit log.
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ApiError> {
        match s {
            "backend" => Ok(Scope::Backend),
            "admin" => Ok(Scope::Admin),
            _ => Err(ApiError::bad_request(
                "bad_scope",
                "scope is \"admin\" or \"backend\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Backend => "backend",
            Scope::Admin => "admin",
        }
    }
}

/// Who makes a change: an API key, or the CLI on the server's own machine.
#[derive(Debug, Clone)]
pub struct Actor {
    /// For the audit log: `api_key:ak_…` or `cli:<login>`.
    pub name: String,
    /// The org the key belongs to; `None` for an operator key or the CLI (every org).
    pub org: Option<String>,
    pub scope: Scope,
}

impl Actor {
    /// The CLI: whoever can read the database can do anything anyway.
    pub fn cli() -> Actor {
        let login = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            name: format!("cli:{login}"),
            org: None,
            scope: Scope::Admin,
        }
    }

    /// Refuses a caller that may not act on `org` with `needed`.
    pub fn require(&self, org: &str, needed: Scope) -> Result<(), ApiError> {
        if self.org.as_deref().is_some_and(|own| own != org) {
            return Err(ApiError::forbidden(
                "wrong_org",
                "this API key belongs to another org",
            ));
        }
        if needed == Scope::Admin && self.scope != Scope::Admin {
            return Err(ApiError::forbidden(
                "scope_insufficient",
                "this needs an API key with the admin scope",
            ));
        }
        Ok(())
    }

    /// Refuses anything but an operator key (of no org) with the admin scope.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.org.is_some() || self.scope != Scope::Admin {
            return Err(ApiError::forbidden(
                "scope_insufficient",
                "this needs an operator API key (admin scope, no org)",
            ));
        }
        Ok(())
    }
}

/// Checks a short, human-given text field (a name, an email, a kid).
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_field",
            format!("{field} must be 1 to {max} bytes without control characters"),
        ));
    }
    Ok(())
}

/// An external ID, org ID or group name in a path: printable, bounded.
pub fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
    check_text(field, value, 256)
}
