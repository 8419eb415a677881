//! The bus between nodes, for a site that runs several sotto-servers on one database: what
//! a node would tell a socket it holds (a queue grew, a frame to push, a session or device
//! that ended) it also publishes on NATS, and every other node does the same for the
//! sockets it holds. The database stays the source of truth: a notice that is lost (a
//! node restarting, the bus down) only delays a delivery, because each node also sweeps
//! the queues of the devices connected to it every few seconds.
//!
//! Anyone who can publish on the bus can push frames to sockets and close them: keep NATS
//! on a private network, with credentials in its URL.

use super::registry::Registry;
use crate::db::Db;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sotto_core::protocol::ServerFrame;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The one subject every node publishes on and listens to.
pub const SUBJECT: &str = "sotto.v1.notices";
/// How often each node looks for queued envelopes of the devices connected to it, by
/// default (`bus_sweep_secs`).
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Devices looked up per sweep query.
const SWEEP_CHUNK: usize = 500;
/// Notices waiting to be published; past it (NATS down for a while) new ones are dropped,
/// which the sweep makes up for, rather than memory growing without end.
const OUTGOING: usize = 10_000;

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// `device`'s queue has grown.
    Wake { device: String },
    /// A frame for every socket of `device`.
    Push { device: String, frame: ServerFrame },
    /// One frame for every socket of each of `devices` (a group's change, told to many).
    PushMany {
        devices: Vec<String>,
        frame: ServerFrame,
    },
    /// `device` was removed: its sockets say `code` and close.
    EndDevice {
        device: String,
        code: String,
        message: String,
    },
    /// The session with this token hash (base64) ended: its sockets say `code` and close.
    EndSession {
        session_hash: String,
        code: String,
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// The node that published it, which ignores its own notices.
    from: String,
    notice: Notice,
}

/// A node's way onto the bus: notices go out in the order they were made.
pub struct Bus {
    node: String,
    outgoing: mpsc::Sender<bytes::Bytes>,
    /// For readiness: whether NATS is connected now.
    client: async_nats::Client,
}

impl Bus {
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub fn publish(&self, notice: Notice) {
        let wire = Wire {
            from: self.node.clone(),
            notice,
        };
        match serde_json::to_vec(&wire) {
            Ok(bytes) => {
                if self.outgoing.try_send(bytes.into()).is_err() {
                    tracing::warn!("bus notice dropped: the bus is not taking them");
                }
            }
            Err(e) => tracing::error!(error = %e, "bus notice not encoded"),
        }
    }
}

/// Connects to NATS at `url`, starts publishing `registry`'s notices, delivering other
/// nodes' notices to the sockets `registry` holds, and sweeping their queues.
pub async fn start(
    url: &str,
    registry: Arc<Registry>,
    db: Db,
    sweep_every: Duration,
) -> Result<(), String> {
    let node = crate::db::new_id("node");
    let client = async_nats::ConnectOptions::new()
        .name(format!("sotto-server {node}"))
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| {
            format!(
                "cannot reach the bus {}: {e}",
                crate::config::without_credentials(url)
            )
        })?;
    let mut incoming = client
        .subscribe(SUBJECT)
        .await
        .map_err(|e| format!("cannot subscribe on the bus: {e}"))?;
    // Make sure the subscription is in place before this node serves anyone.
    client
        .flush()
        .await
        .map_err(|e| format!("the bus does not answer: {e}"))?;
    let (outgoing, mut to_send) = mpsc::channel::<bytes::Bytes>(OUTGOING);
    let watched = client.clone();
    tokio::spawn(async move {
        while let Some(payload) = to_send.recv().await {
            if let Err(e) = client.publish(SUBJECT, payload).await {
                tracing::warn!(error = %e, "bus notice not published");
            }
        }
    });
    {
        let registry = registry.clone();
        let node = node.clone();
        tokio::spawn(async move {
            while let Some(message) = incoming.next().await {
                match serde_json::from_slice::<Wire>(&message.payload) {
                    Ok(wire) if wire.from != node => registry.apply(wire.notice),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "unreadable bus notice"),
                }
            }
        });
    }
    tokio::spawn(sweep(db, registry.clone(), sweep_every));
    registry.attach_bus(Bus {
        node,
        outgoing,
        client: watched,
    });
    tracing::info!(bus = %crate::config::without_credentials(url), subject = SUBJECT, "joined the bus");
    Ok(())
}

/// Every `period`, wakes the connected devices that have envelopes queued, so a notice
/// that never came delays a delivery by seconds and loses nothing; and closes the sockets
/// of sessions that ended (signed out on another node, or expired), so a lost sign-out
/// notice leaves a stolen session's socket open for seconds, not hours.
async fn sweep(db: Db, registry: Arc<Registry>, period: Duration) {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for chunk in registry.devices().chunks(SWEEP_CHUNK) {
            let sql = "SELECT DISTINCT device_id FROM envelopes WHERE device_id IN";
            match matching(&db, sql, chunk.to_vec(), |r| r.get::<String>(0)).await {
                Ok(devices) => devices.iter().for_each(|d| registry.wake_here(d)),
                Err(e) => tracing::warn!(error = %e, "queue sweep failed"),
            }
        }
        for chunk in registry.sessions().chunks(SWEEP_CHUNK) {
            let sql = "SELECT token_hash, expires_at FROM sessions WHERE token_hash IN";
            let row = |r: &crate::db::Row<'_>| Ok((r.get::<Vec<u8>>(0)?, r.get::<i64>(1)?));
            match matching(&db, sql, chunk.to_vec(), row).await {
                Ok(found) => {
                    let now = crate::db::now_secs();
                    let live: std::collections::HashSet<Vec<u8>> = found
                        .into_iter()
                        .filter(|(_, expires_at)| *expires_at > now)
                        .map(|(hash, _)| hash)
                        .collect();
                    chunk.iter().filter(|h| !live.contains(*h)).for_each(|h| {
                        registry.end_session_here(h, "session_revoked", "this session has ended")
                    })
                }
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
        }
    }
}

/// The rows that `sql` (ending in `IN`) returns for `keys`, read by `row`, in one
/// statement shape: the list is padded to a full chunk with its first key, so each
/// connection prepares it once.
async fn matching<K, T>(
    db: &Db,
    sql: &'static str,
    mut keys: Vec<K>,
    row: fn(&crate::db::Row<'_>) -> crate::db::Result<T>,
) -> crate::db::Result<Vec<T>>
where
    K: crate::db::ToValue + Clone + Send + 'static,
    T: Send + 'static,
{
    keys.resize(SWEEP_CHUNK, keys[0].clone());
    db.read(move |conn| {
        let marks: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
        let params: Vec<&dyn crate::db::ToValue> =
            keys.iter().map(|k| k as &dyn crate::db::ToValue).collect();
        conn.query_map(&format!("{sql} ({})", marks.join(", ")), &params, row)?
            .collect()
    })
    .await
}
