//! Which devices are connected right now. A send wakes the recipient's connections; each
//! connection then reads its queue from the database, so order and durability come from one
//! place (the queue) and a wake-up can never carry a stale or out-of-order envelope.

use sotto_core::protocol::ServerFrame;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// One open connection: its number, the session it signed in with (by token hash), its
/// queue wake-up, and a way to push other frames.
struct Connection {
    id: u64,
    session_hash: Vec<u8>,
    notify: Arc<Notify>,
    frames: mpsc::UnboundedSender<ServerFrame>,
}

/// Each device's open connections.
type Connections = HashMap<String, Vec<Connection>>;

#[derive(Default)]
pub struct Registry {
    connections: Mutex<Connections>,
    next_id: AtomicU64,
}

/// A connection's place in the registry; dropping it removes the connection.
pub struct Registration<'a> {
    registry: &'a Registry,
    device_id: String,
    id: u64,
    pub notify: Arc<Notify>,
    /// Frames other than envelopes (e.g. link requests) to send on this connection.
    pub frames: mpsc::UnboundedReceiver<ServerFrame>,
}

impl Registry {
    pub fn register(&self, device_id: &str, session_hash: &[u8]) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock()
            .entry(device_id.to_owned())
            .or_default()
            .push(Connection {
                id,
                session_hash: session_hash.to_vec(),
                notify: notify.clone(),
                frames: tx,
            });
        Registration {
            registry: self,
            device_id: device_id.to_owned(),
            id,
            notify,
            frames: rx,
        }
    }

    /// Tells every connection of `device_id` that its queue has grown.
    pub fn wake(&self, device_id: &str) {
        if let Some(conns) = self.lock().get(device_id) {
            for c in conns {
                c.notify.notify_one();
            }
        }
    }

    /// Sends `frame` on every open connection of `device_id`.
    pub fn push(&self, device_id: &str, frame: &ServerFrame) {
        if let Some(conns) = self.lock().get(device_id) {
            for c in conns {
                let _ = c.frames.send(frame.clone());
            }
        }
    }

    /// Ends every connection of `device_id` (removed): each says `code` and closes.
    pub fn end_device(&self, device_id: &str, code: &str, message: &str) {
        self.push(device_id, &closing(code, message));
    }

    /// Ends every connection signed in with the session `session_hash` (signed out).
    pub fn end_session(&self, session_hash: &[u8], code: &str, message: &str) {
        let frame = closing(code, message);
        for conns in self.lock().values() {
            for c in conns.iter().filter(|c| c.session_hash == session_hash) {
                let _ = c.frames.send(frame.clone());
            }
        }
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The frame that makes a connection say why and close (see `socket.rs`).
fn closing(code: &str, message: &str) -> ServerFrame {
    ServerFrame::Error {
        code: code.into(),
        message: message.into(),
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(conns) = map.get_mut(&self.device_id) {
            conns.retain(|c| c.id != self.id);
            if conns.is_empty() {
                map.remove(&self.device_id);
            }
        }
    }
}
