//! Which devices are connected right now. A send wakes the recipient's connections; each
//! connection then reads its queue from the database, so order and durability come from one
//! place (the queue) and a wake-up can never carry a stale or out-of-order envelope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Each device's open connections: (connection number, its wake-up).
type Connections = HashMap<String, Vec<(u64, Arc<Notify>)>>;

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
}

impl Registry {
    pub fn register(&self, device_id: &str) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.lock()
            .entry(device_id.to_owned())
            .or_default()
            .push((id, notify.clone()));
        Registration {
            registry: self,
            device_id: device_id.to_owned(),
            id,
            notify,
        }
    }

    /// Tells every connection of `device_id` that its queue has grown.
    pub fn wake(&self, device_id: &str) {
        if let Some(conns) = self.lock().get(device_id) {
            for (_, n) in conns {
                n.notify_one();
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

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        if let Some(conns) = map.get_mut(&self.device_id) {
            conns.retain(|(id, _)| *id != self.id);
            if conns.is_empty() {
                map.remove(&self.device_id);
            }
        }
    }
}
