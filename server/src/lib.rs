//! `sotto-server`: the relay that Sotto's browser clients talk to.
//!
//! It signs users in with JWTs from the site's own backend (or an org's ephemeral token),
//! keeps the org's directory (users, tags, groups) and the devices' public keys, and stores
//! and forwards sealed envelopes until each recipient device acknowledges them. It never sees
//! a message's plaintext or a private key: envelopes are opaque bytes to it.
//!
//! Layout: [`config`] (file, environment, flags), [`db`] (SQLite or PostgreSQL), [`auth`] (JWTs, identity
//! claims, sessions), [`directory`] (users, tags, expressions), [`blobs`] (attachments and
//! their quotas; [`blob_store`] keeps their bytes), [`devices`] (devices and their registration keys), [`keys`]
//! (identities, device lists, prekeys), [`links`] (linking requests), [`routes`] (the HTTP API, thin handlers over those),
//! [`delivery`] (the durable queue and the WebSocket), [`error`] (the JSON error body).

pub mod admin;
pub mod auth;
pub mod blob_store;
pub mod blobs;
pub mod cli;
pub mod config;
pub mod db;
pub mod delivery;
pub mod devices;
pub mod directory;
pub mod error;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod outbound;
pub mod request_id;
pub mod retention;
pub mod routes;
pub mod state;
pub mod webhooks;

use auth::rate_limit::RateLimiter;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use config::Config;
use db::Db;
use error::ApiError;
use state::{AppState, SharedState};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Request bodies other than envelope sends stay small.
const MAX_BODY: usize = 64 * 1024;
/// Link requests one session may make per minute: each one puts a dialog on every browser
/// of the user, so a handful is plenty.
const LINK_REQUESTS_PER_MINUTE: u32 = 6;

/// Builds the shared state: opens the database, loads the orgs, seeds the demo.
pub async fn build_state(config: Config) -> Result<SharedState, String> {
    let db = Db::connect(&config.database)
        .await
        .map_err(|e| format!("cannot open database {}: {e}", config.database))?;
    let blobs = blobs::BlobStore::open(&config.blob_store).await?;
    let demo_secret = if config.demo && !config.admin_cli {
        let secret = match &config.demo_secret {
            Some(shared) if shared.len() >= 32 => shared.as_bytes().to_vec(),
            Some(_) => return Err("SOTTO_DEMO_SECRET must be at least 32 characters".into()),
            None => {
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
                secret
            }
        };
        db.call(routes::demo::seed).await.map_err(|e| e.message)?;
        Some(secret)
    } else {
        None
    };
    let org_rows: Vec<(String, Option<String>)> = config
        .orgs
        .iter()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    let groups: Vec<(String, config::GroupConfig)> = config
        .orgs
        .iter()
        .flat_map(|o| o.groups.iter().map(move |g| (o.id.clone(), g.clone())))
        .collect();
    let admin_cli = config.admin_cli;
    db.call(move |conn| {
        if admin_cli {
            return Ok(());
        }
        for (id, name) in &org_rows {
            conn.execute(
                "INSERT INTO orgs (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                crate::params![id, name],
            )?;
        }
        for (org, g) in &groups {
            let name = g.name.to_ascii_lowercase();
            if directory::set_group(conn, org, &name, &g.members)? {
                // Threads made before keep their members: see README, "Operating Sotto".
                tracing::info!(org, group = %name, "group membership changed");
            }
        }
        Ok::<_, ApiError>(())
    })
    .await
    .map_err(|e| e.message)?;
    let orgs = Arc::new(
        auth::orgs::OrgDirectory::load(&db, config.orgs.clone(), demo_secret.clone()).await?,
    );
    orgs.start_reloading(db.clone());
    let registry = Arc::new(delivery::registry::Registry::default());
    if let Some(url) = &config.bus {
        delivery::bus::start(url, registry.clone(), db.clone(), config.bus_sweep).await?;
        if let blob_store::StoreLocation::Directory(dir) = &config.blob_store {
            tracing::warn!(
                blob_store = %dir.display(),
                "with several nodes the blob store must be one they share (an s3:// bucket, \
                 or one shared directory at this path on every node), or attachments \
                 uploaded through one node are missing on the others"
            );
        }
    }
    let writer = delivery::writer::Writer::start(db.clone(), registry.clone());
    Ok(Arc::new(AppState {
        auth_limiter: RateLimiter::new(config.auth_rate_per_minute, "sign-in attempts"),
        account_limiter: RateLimiter::new(config.auth_rate_per_minute, "sign-ins to this account"),
        send_limiter: RateLimiter::new(config.session_rate_per_minute, "sends"),
        claim_limiter: RateLimiter::new(config.session_rate_per_minute, "bundle claims"),
        live_limiter: RateLimiter::new(delivery::live::LIVE_SENDS_PER_MINUTE, "typing notices"),
        upload_limiter: RateLimiter::new(config.session_rate_per_minute, "uploads"),
        link_limiter: RateLimiter::new(LINK_REQUESTS_PER_MINUTE, "link requests"),
        config,
        db,
        blobs,
        orgs,
        registry,
        writer,
        demo_secret,
        draining: tokio::sync::watch::channel(false).0,
        open_sockets: tokio::sync::watch::channel(0).0,
    }))
}

/// The whole HTTP surface.
pub fn app(state: SharedState) -> Router {
    let mut api = Router::new()
        .route("/v1/auth/jwt", post(routes::auth::sign_in_jwt))
        .route("/v1/auth/ephemeral", post(routes::auth::sign_in_ephemeral))
        .route("/v1/auth/logout", post(routes::auth::logout))
        .route("/v1/me", get(routes::auth::me))
        .route("/v1/resolve", post(routes::directory::resolve))
        .route("/v1/users/{id}", get(routes::directory::user))
        .route("/v1/users/{id}/devices", get(routes::devices::list))
        .route("/v1/devices", post(routes::devices::register))
        .route(
            "/v1/devices/{id}/prekeys",
            post(routes::keys::upload_prekeys),
        )
        .route(
            "/v1/identity",
            axum::routing::put(routes::keys::publish_identity),
        )
        .route("/v1/users/{id}/keys", get(routes::keys::user_keys))
        .route("/v1/bundles", post(routes::keys::claim_bundles))
        .route(
            "/v1/devices/{id}",
            axum::routing::delete(routes::devices::remove),
        )
        .route(
            "/v1/envelopes",
            post(routes::envelopes::send).layer(DefaultBodyLimit::max(routes::envelopes::MAX_BODY)),
        )
        .route(
            "/v1/blobs",
            post(routes::blobs::upload).layer(DefaultBodyLimit::max(blobs::MAX_BLOB)),
        )
        .route("/v1/blobs/{id}", get(routes::blobs::download))
        .route("/v1/links", post(routes::links::create))
        .route("/v1/links/{id}", get(routes::links::get))
        .route("/v1/links/{id}/accept", post(routes::links::accept))
        .route("/v1/links/{id}/reveal", post(routes::links::reveal))
        .route(
            "/v1/links/{id}/approve",
            post(routes::links::approve).layer(DefaultBodyLimit::max(2 * links::MAX_SEALED)),
        )
        .route("/v1/links/{id}/decline", post(routes::links::decline))
        .route("/v1/ws", get(delivery::socket::upgrade))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz));
    if state.demo_secret.is_some() {
        api = api
            .route("/demo/jwt", post(routes::demo::mint))
            .route("/demo/jwt.js", get(routes::demo::mint_script));
    }
    api = api.layer(cors(&state.config));
    // The admin API: no CORS (no browser should hold an API key).
    api = api
        .merge(routes::admin::routes())
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(error::json_errors));

    let mut app = api;
    if let Some(dir) = &state.config.static_dir {
        app = app
            // The client package is public and loaded by other sites' pages (scripts,
            // modules and wasm fetched cross-origin), so any origin may read it.
            .nest_service(
                "/pkg",
                tower_layer::Layer::layer(
                    &CorsLayer::new()
                        .allow_origin(AllowOrigin::any())
                        .allow_methods([Method::GET]),
                    ServeDir::new(dir.join("pkg")),
                ),
            )
            .nest_service("/examples", ServeDir::new(dir.join("examples")))
            .fallback_service(ServeDir::new(dir.join("www")));
    } else {
        app = app.fallback(not_found);
    }
    // Spans name the path only: query strings can carry sign-in tokens and are never logged,
    // nor are the site's own user IDs (often emails) in admin paths.
    app.layer(
        TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let path = request_id::loggable_path(req.uri().path());
            tracing::info_span!("http", method = %req.method(), path = %path, request_id = %id)
        }),
    )
    .layer(axum::middleware::from_fn(request_id::assign))
    .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

fn cors(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .allowed_origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    let allow = if config.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Serves `/metrics` at `at`, apart from the public listener. A node that cannot bind it
/// (another node on this machine has the default port) serves on without metrics.
async fn serve_metrics(at: SocketAddr, state: SharedState) {
    match tokio::net::TcpListener::bind(at).await {
        Ok(listener) => {
            let bound = listener.local_addr().unwrap_or(at);
            tracing::info!("metrics on http://{bound}/metrics");
            tokio::spawn(async move {
                let app = routes::health::metrics_app(state);
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        Err(e) => tracing::warn!(
            metrics_listen = %at,
            error = %e,
            "no metrics: cannot listen there (set metrics_listen to another address, or \"off\")"
        ),
    }
}

/// How long a stopping server waits for its connections to finish before it exits anyway.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A server bound to its address and running until `shutdown` resolves. Then it stops
/// taking connections, tells every socket it is going away (clients reconnect, to another
/// node behind a load balancer), lets requests in progress finish, and commits every send
/// it accepted before it returns.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let listen = config.listen;
    let state = build_state(config).await?;
    webhooks::start(
        state.db.clone(),
        state.config.webhook_offline_after,
        state.config.allow_private_webhook_urls,
    );
    retention::start(
        state.db.clone(),
        state.registry.clone(),
        state.blobs.clone(),
        state.config.retention,
    );
    {
        // Bytes an earlier version kept in the database go to the blob store.
        let (db, store) = (state.db.clone(), state.blobs.clone());
        tokio::spawn(async move {
            match blobs::move_to_store(&db, &store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "attachments moved to the blob store"),
                Err(e) => {
                    tracing::error!(error = %e.message, "moving attachments to the blob store failed")
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    if let Some(at) = state.config.metrics_listen {
        serve_metrics(at, state.clone()).await;
    }
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    on_bound(addr);
    // Frames on the delivery socket are small and answer each other: Nagle's algorithm
    // would hold one back until the last is acknowledged (tens of milliseconds).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let draining = state.draining.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("stopping: sockets are told to reconnect elsewhere");
        draining.send_replace(true);
    };
    let mut stopping = state.draining.subscribe();
    let served = axum::serve(
        listener,
        app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let served = std::future::IntoFuture::into_future(served);
    tokio::pin!(served);
    let result = tokio::select! {
        result = &mut served => result.map_err(|e| e.to_string()),
        _ = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        } => {
            tracing::warn!("connections still open after {DRAIN_LIMIT:?}; stopping anyway");
            Ok(())
        }
    };
    // The sockets finish what they were doing (a send in progress is answered) and close.
    let mut sockets = state.open_sockets.subscribe();
    if tokio::time::timeout(DRAIN_LIMIT, sockets.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        tracing::warn!(
            open = *state.open_sockets.borrow(),
            "sockets still open after {DRAIN_LIMIT:?}; stopping anyway"
        );
    }
    // Every send accepted so far is committed before the process goes.
    state.writer.flush().await;
    result
}
