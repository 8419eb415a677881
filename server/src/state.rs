//! The state every request handler shares.

use crate::auth::orgs::OrgDirectory;
use crate::auth::rate_limit::RateLimiter;
use crate::config::Config;
use crate::db::Db;
use crate::delivery::registry::Registry;
use crate::delivery::writer::Writer;
use std::sync::Arc;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    /// Attachments' bytes.
    pub blobs: crate::blobs::BlobStore,
    /// The orgs and how their people sign in (file, demo, and the admin API's changes).
    pub orgs: Arc<OrgDirectory>,
    pub registry: Arc<Registry>,
    /// Stores sends and deletes acknowledged envelopes, committing many at once.
    pub writer: Writer,
    /// Sign-in attempts per client address, and per account.
    pub auth_limiter: RateLimiter,
    pub account_limiter: RateLimiter,
    /// Per session: sends, bundle claims, uploads and link requests.
    pub send_limiter: RateLimiter,
    pub claim_limiter: RateLimiter,
    /// Per session: live sends (typing notices), apart from the sends of messages.
    pub live_limiter: RateLimiter,
    pub upload_limiter: RateLimiter,
    pub link_limiter: RateLimiter,
    /// Present only in `--demo` mode: the secret that /demo/jwt signs with.
    pub demo_secret: Option<Vec<u8>>,
    /// Becomes true when the server is stopping: sockets say "going away" and close, so
    /// their clients reconnect to another node.
    pub draining: tokio::sync::watch::Sender<bool>,
    /// Delivery sockets open now: a stopping server waits for them to close (HTTP's
    /// graceful shutdown does not see upgraded connections).
    pub open_sockets: tokio::sync::watch::Sender<usize>,
}

pub type SharedState = Arc<AppState>;
