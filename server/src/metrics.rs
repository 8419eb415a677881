//! Prometheus metrics, served at `/metrics` on their own listen address (`metrics_listen`,
//! 127.0.0.1:9464 by default), so the public listener never shows them. One set per
//! process: the counters are bumped where things happen (the socket, the writer, sign-in,
//! the rate limiter, webhooks), the gauges are read when scraped.

use crate::state::SharedState;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

/// A metric's labels, as name and value.
pub type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub open_sockets: Gauge,
    pub queued_envelopes: Gauge,
    pub deliveries: Counter,
    /// From the server's acceptance of an envelope to its delivery on a socket.
    pub delivery_latency: Histogram,
    /// One group commit of the writer (sends, acks, retries).
    pub commit_seconds: Histogram,
    /// Sign-ins by kind (jwt, visitor) and result (ok, or the error code).
    pub sign_ins: Family<Labels, Counter>,
    /// Requests a rate limit refused, by limit.
    pub rate_limited: Family<Labels, Counter>,
    /// Webhook deliveries by event and outcome (delivered, retried, failed, dropped).
    pub webhooks: Family<Labels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("sotto");
    let m = Metrics {
        open_sockets: Gauge::default(),
        queued_envelopes: Gauge::default(),
        deliveries: Counter::default(),
        // 1 ms to about 9 hours: a live socket gets its envelopes in milliseconds, an
        // offline device hours later.
        delivery_latency: Histogram::new(exponential_buckets(0.001, 4.0, 13)),
        // 0.1 ms to about 1.6 s.
        commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
        sign_ins: Family::default(),
        rate_limited: Family::default(),
        webhooks: Family::default(),
        registry: Registry::default(),
    };
    registry.register(
        "open_sockets",
        "Delivery sockets open on this node",
        m.open_sockets.clone(),
    );
    registry.register(
        "queued_envelopes",
        "Envelopes stored and not yet acknowledged, on every node",
        m.queued_envelopes.clone(),
    );
    registry.register(
        "deliveries",
        "Envelopes sent on this node's sockets",
        m.deliveries.clone(),
    );
    registry.register(
        "delivery_latency_seconds",
        "From acceptance of an envelope to its sending on a socket",
        m.delivery_latency.clone(),
    );
    registry.register(
        "commit_seconds",
        "Time of one group commit of sends, acknowledgements and retries",
        m.commit_seconds.clone(),
    );
    registry.register(
        "sign_ins",
        "Sign-ins by kind and result",
        m.sign_ins.clone(),
    );
    registry.register(
        "rate_limited",
        "Requests refused by a rate limit",
        m.rate_limited.clone(),
    );
    registry.register(
        "webhooks",
        "Webhook deliveries by event and outcome",
        m.webhooks.clone(),
    );
    Metrics { registry, ..m }
});

pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Counts one occurrence in a labelled family.
pub fn count(family: &Family<Labels, Counter>, labels: &[(&'static str, &str)]) {
    let labels: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    family.get_or_create(&labels).inc();
}

/// The exposition text, with the gauges read now.
pub async fn render(state: &SharedState) -> String {
    let m = metrics();
    m.open_sockets.set(*state.open_sockets.borrow() as i64);
    if let Ok(n) = state
        .db
        .read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM envelopes", crate::params![], |r| {
                r.get::<i64>(0)
            })
        })
        .await
    {
        m.queued_envelopes.set(n);
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        tracing::error!("metrics not encoded");
    }
    out
}
