//! The server's HTTP API, one function per endpoint. Every call made with a session token
//! goes through [`Inner::api`], so a refused or expired session is handled one way
//! everywhere (`Inner::failed` starts the expiry path) and no caller builds a path or picks
//! a method by hand. The socket's frames are `socket.rs`'s.
//!
//! Each endpoint returns the future of one `api` call rather than being an `async fn` of
//! its own, and the request itself is not generic: every byte of the wasm is downloaded by
//! every visitor, and a state machine per endpoint would cost kilobytes.

use super::Inner;
use crate::error::ClientResult;
use crate::http;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::protocol::{
    ClaimBundles, Device, EphemeralSignIn, JwtSignIn, LinkAccept, LinkApprove, LinkCreate,
    LinkRequest, LinkReveal, PrekeyCount, PublishIdentity, RegisterDevice, ResolveRequest,
    Resolved, SendReceipt, SendRequest, Session, UploadPrekeys, User, UserKeys,
};
use std::future::Future;
use std::rc::Rc;

/// `POST /v1/blobs` answers with the new blob's ID.
#[derive(Deserialize)]
pub(super) struct Uploaded {
    pub id: String,
}

/// No body, for calls that take none.
const NONE: Option<&()> = None;

impl Inner {
    /// `method path`, with this session's `token` when given, and a JSON body.
    fn api<B: Serialize, R: DeserializeOwned>(
        self: &Rc<Self>,
        method: &'static str,
        path: String,
        token: Option<&str>,
        body: Option<&B>,
    ) -> impl Future<Output = ClientResult<R>> {
        self.api_with(method, path, token, body, true)
    }

    /// The same; with `expire` false a refusal is only reported (the best-effort calls of
    /// a sign-out, which must not start the expiry path in the middle of it).
    fn api_with<B: Serialize, R: DeserializeOwned>(
        self: &Rc<Self>,
        method: &'static str,
        path: String,
        token: Option<&str>,
        body: Option<&B>,
        expire: bool,
    ) -> impl Future<Output = ClientResult<R>> {
        let json = body.map(http::to_json).transpose();
        let text = self
            .clone()
            .api_text(method, path, token.map(str::to_owned), json, expire);
        async move { http::parse(&text.await?) }
    }

    async fn api_text(
        self: Rc<Self>,
        method: &'static str,
        path: String,
        token: Option<String>,
        json: ClientResult<Option<String>>,
        expire: bool,
    ) -> ClientResult<String> {
        let answer = http::call(&self.options.url, method, &path, token.as_deref(), json?).await;
        match (token, expire) {
            (Some(t), true) => answer.map_err(|e| self.failed_for(e, &t)),
            _ => answer,
        }
    }

    /// `POST /v1/auth/jwt`: a session for the user a site's JWT names.
    pub(super) fn sign_in_with_jwt(
        self: &Rc<Self>,
        req: &JwtSignIn,
    ) -> impl Future<Output = ClientResult<Session>> {
        self.api("POST", "/v1/auth/jwt".into(), None, Some(req))
    }

    /// `POST /v1/auth/ephemeral`: a visitor's session.
    pub(super) fn sign_in_as_visitor(
        self: &Rc<Self>,
        req: &EphemeralSignIn,
    ) -> impl Future<Output = ClientResult<Session>> {
        self.api("POST", "/v1/auth/ephemeral".into(), None, Some(req))
    }

    /// `POST /v1/auth/logout`: the server forgets the session (and closes its sockets).
    /// Best effort, during a sign-out: a refusal does not expire anything.
    pub(super) fn logout(
        self: &Rc<Self>,
        token: &str,
    ) -> impl Future<Output = ClientResult<Value>> {
        self.api_with(
            "POST",
            "/v1/auth/logout".into(),
            Some(token),
            Some(&()),
            false,
        )
    }

    /// `POST /v1/devices`: registers (or finds again) this browser's device.
    pub(super) fn register_device(
        self: &Rc<Self>,
        token: &str,
        req: &RegisterDevice,
    ) -> impl Future<Output = ClientResult<Device>> {
        self.api("POST", "/v1/devices".into(), Some(token), Some(req))
    }

    /// `DELETE /v1/devices/{id}` (best effort, during `clearSession`).
    pub(super) fn remove_device(
        self: &Rc<Self>,
        token: &str,
        id: &str,
    ) -> impl Future<Output = ClientResult<Value>> {
        self.api_with(
            "DELETE",
            format!("/v1/devices/{id}"),
            Some(token),
            NONE,
            false,
        )
    }

    /// `POST /v1/devices/{id}/prekeys`: a signed prekey and/or one-time prekeys.
    pub(super) fn post_prekeys(
        self: &Rc<Self>,
        token: &str,
        device_id: &str,
        req: &UploadPrekeys,
    ) -> impl Future<Output = ClientResult<PrekeyCount>> {
        self.api(
            "POST",
            format!("/v1/devices/{device_id}/prekeys"),
            Some(token),
            Some(req),
        )
    }

    /// `PUT /v1/identity`: the user's identity and signed device list.
    pub(super) fn put_identity(
        self: &Rc<Self>,
        token: &str,
        req: &PublishIdentity,
    ) -> impl Future<Output = ClientResult<Value>> {
        self.api("PUT", "/v1/identity".into(), Some(token), Some(req))
    }

    /// `GET /v1/users/{id}`.
    pub(super) fn get_user(
        self: &Rc<Self>,
        token: &str,
        id: &str,
    ) -> impl Future<Output = ClientResult<User>> {
        self.api("GET", format!("/v1/users/{id}"), Some(token), NONE)
    }

    /// `GET /v1/users/{id}/keys`: identity, signed device list and current devices.
    pub(super) fn get_user_keys(
        self: &Rc<Self>,
        token: &str,
        id: &str,
    ) -> impl Future<Output = ClientResult<UserKeys>> {
        self.api("GET", format!("/v1/users/{id}/keys"), Some(token), NONE)
    }

    /// `POST /v1/bundles`: prekey bundles for devices without a session yet.
    pub(super) fn claim_bundles(
        self: &Rc<Self>,
        token: &str,
        req: &ClaimBundles,
    ) -> impl Future<Output = ClientResult<Vec<PreKeyBundle>>> {
        self.api("POST", "/v1/bundles".into(), Some(token), Some(req))
    }

    /// `POST /v1/resolve`: the users an expression names.
    pub(super) fn post_resolve(
        self: &Rc<Self>,
        token: &str,
        expr: &str,
    ) -> impl Future<Output = ClientResult<Resolved>> {
        let req = ResolveRequest {
            expr: expr.to_owned(),
        };
        self.api("POST", "/v1/resolve".into(), Some(token), Some(&req))
    }

    /// `POST /v1/envelopes`: a send over HTTP (before the socket is ready).
    pub(super) fn post_envelopes(
        self: &Rc<Self>,
        token: &str,
        req: &SendRequest,
    ) -> impl Future<Output = ClientResult<SendReceipt>> {
        self.api("POST", "/v1/envelopes".into(), Some(token), Some(req))
    }

    /// `POST /v1/blobs`: an encrypted attachment.
    pub(super) async fn post_blob(
        self: &Rc<Self>,
        token: &str,
        blob: &[u8],
    ) -> ClientResult<Uploaded> {
        http::post_bytes(&self.options.url, "/v1/blobs", token, blob)
            .await
            .map_err(|e| self.failed_for(e, token))
    }

    /// `GET /v1/blobs/{id}`.
    pub(super) async fn get_blob(self: &Rc<Self>, token: &str, id: &str) -> ClientResult<Vec<u8>> {
        http::get_bytes(&self.options.url, &format!("/v1/blobs/{id}"), token)
            .await
            .map_err(|e| self.failed_for(e, token))
    }

    /// `POST /v1/links`: a new browser asks to be linked, committing to its key.
    pub(super) fn post_link(
        self: &Rc<Self>,
        token: &str,
        req: &LinkCreate,
    ) -> impl Future<Output = ClientResult<LinkRequest>> {
        self.api("POST", "/v1/links".into(), Some(token), Some(req))
    }

    /// `GET /v1/links/{id}`.
    pub(super) fn get_link(
        self: &Rc<Self>,
        token: &str,
        id: &str,
    ) -> impl Future<Output = ClientResult<LinkRequest>> {
        self.api("GET", format!("/v1/links/{id}"), Some(token), NONE)
    }

    /// `POST /v1/links/{id}/accept`: the running browser's key.
    pub(super) fn post_link_accept(
        self: &Rc<Self>,
        token: &str,
        id: &str,
        req: &LinkAccept,
    ) -> impl Future<Output = ClientResult<LinkRequest>> {
        self.api(
            "POST",
            format!("/v1/links/{id}/accept"),
            Some(token),
            Some(req),
        )
    }

    /// `POST /v1/links/{id}/reveal`: the new browser's key.
    pub(super) fn post_link_reveal(
        self: &Rc<Self>,
        token: &str,
        id: &str,
        req: &LinkReveal,
    ) -> impl Future<Output = ClientResult<LinkRequest>> {
        self.api(
            "POST",
            format!("/v1/links/{id}/reveal"),
            Some(token),
            Some(req),
        )
    }

    /// `POST /v1/links/{id}/approve`: the sealed bundle for the new browser.
    pub(super) fn post_link_approve(
        self: &Rc<Self>,
        token: &str,
        id: &str,
        req: &LinkApprove,
    ) -> impl Future<Output = ClientResult<Value>> {
        self.api(
            "POST",
            format!("/v1/links/{id}/approve"),
            Some(token),
            Some(req),
        )
    }

    /// `POST /v1/links/{id}/decline`, from either browser.
    pub(super) fn post_link_decline(
        self: &Rc<Self>,
        token: &str,
        id: &str,
    ) -> impl Future<Output = ClientResult<Value>> {
        self.api(
            "POST",
            format!("/v1/links/{id}/decline"),
            Some(token),
            Some(&()),
        )
    }
}
