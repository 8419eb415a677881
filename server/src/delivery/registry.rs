//! Which devices are connected right now. The group commit hands each envelope it has just
//! committed to the recipient's connections on this node ([`Registry::deliver`]); anything
//! else that queues an envelope, and every node when there are several, wakes them to read
//! their queue from the database. Durability comes from one place (the queue): a pushed
//! envelope is already committed, and one that cannot be pushed is read (see `cursor.rs`).

use super::bus::{Bus, Notice};
use crate::error::ApiError;
use sotto_core::protocol::{DeliveredEnvelope, ServerFrame};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// One open connection: its number, the session it signed in with (by token hash), its
/// queue wake-up, and a way to push other frames.
struct Connection {
    id: u64,
    session_hash: Vec<u8>,
    notify: Arc<Notify>,
    frames: mpsc::UnboundedSender<ServerFrame>,
    backlog: Arc<Backlog>,
}

/// What waits in one connection's frame channel, shared by the registry (which bounds
/// it) and the socket (which takes off what it writes).
#[derive(Default)]
pub struct Backlog {
    /// Live frames not yet written (see [`MAX_LIVE_QUEUED`]).
    live: AtomicUsize,
    /// Payload bytes of pushed envelopes not yet written (see [`MAX_PUSHED_BYTES`]).
    pushed_bytes: AtomicUsize,
    /// An envelope was not pushed (the connection held too much): until the socket reads
    /// its queue, later ones are not pushed either, so none can overtake it.
    must_read: AtomicBool,
}

impl Backlog {
    /// The socket has written a frame that came through the channel.
    pub fn written(&self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Live(_) => {
                self.live.fetch_sub(1, Ordering::Relaxed);
            }
            ServerFrame::Envelope(env) => {
                self.pushed_bytes
                    .fetch_sub(env.payload.len(), Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The socket is about to read its queue: pushes may go again.
    pub fn reading(&self) {
        self.must_read.store(false, Ordering::SeqCst);
    }
}

/// Each device's open connections.
type Connections = HashMap<String, Vec<Connection>>;

/// Live frames (typing notices) that may wait for one connection: past it, new ones are
/// dropped, so a peer that reads slowly or not at all cannot make the server hold
/// payloads that others chose without end. A late typing notice is worth nothing anyway.
pub const MAX_LIVE_QUEUED: usize = 32;
/// Payload bytes of pushed envelopes that may wait for one connection: past it, the
/// connection is woken to read its queue instead, so a peer that reads slowly makes the
/// server hold no more than this in memory (the rest stays in the database).
pub const MAX_PUSHED_BYTES: usize = 256 * 1024;
/// Open delivery sockets one user may have (a person's browsers and tabs, with room).
pub const MAX_CONNECTIONS_PER_USER: usize = 20;
/// Devices named per bus notice of [`Registry::push_many`] (a notice of 500 IDs is ~15 KB,
/// well under NATS's default 1 MiB payload limit).
const PUSH_CHUNK: usize = 500;
/// Open delivery sockets from one client address by default (many people may share one
/// behind NAT): `max_connections_per_address` in the configuration.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 500;

#[derive(Default)]
pub struct Registry {
    connections: Mutex<Connections>,
    /// The other nodes, when there are any: each notice for a device or session is also
    /// published there, for the sockets they hold.
    bus: std::sync::OnceLock<Bus>,
    next_id: AtomicU64,
    /// Open sockets per user and per client address, for the limits above.
    admitted: Mutex<(HashMap<String, usize>, HashMap<String, usize>)>,
}

/// A socket's place within the connection limits; dropping it frees the place.
pub struct ConnectionPermit {
    registry: Arc<Registry>,
    user: String,
    address: String,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut admitted = self
            .registry
            .admitted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (users, addresses) = &mut *admitted;
        release(users, &self.user);
        release(addresses, &self.address);
    }
}

fn release(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// A connection's place in the registry; dropping it removes the connection.
pub struct Registration<'a> {
    registry: &'a Registry,
    device_id: String,
    id: u64,
    pub notify: Arc<Notify>,
    /// Frames to send on this connection: pushed envelopes, receipts, link requests….
    pub frames: mpsc::UnboundedReceiver<ServerFrame>,
    /// What waits among them (see [`Backlog::written`]).
    pub backlog: Arc<Backlog>,
}

impl Registry {
    /// Admits one more socket for `user` from `address`, or refuses with 429.
    pub fn admit(
        self: &Arc<Self>,
        user: &str,
        address: &str,
        per_address: usize,
    ) -> Result<ConnectionPermit, ApiError> {
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let (users, addresses) = &mut *admitted;
        if users.get(user).copied().unwrap_or(0) >= MAX_CONNECTIONS_PER_USER {
            return Err(too_many("this user has too many open connections"));
        }
        if addresses.get(address).copied().unwrap_or(0) >= per_address {
            return Err(too_many("too many open connections from this address"));
        }
        *users.entry(user.to_owned()).or_default() += 1;
        *addresses.entry(address.to_owned()).or_default() += 1;
        Ok(ConnectionPermit {
            registry: self.clone(),
            user: user.to_owned(),
            address: address.to_owned(),
        })
    }

    pub fn register(&self, device_id: &str, session_hash: &[u8]) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        self.lock()
            .entry(device_id.to_owned())
            .or_default()
            .push(Connection {
                id,
                session_hash: session_hash.to_vec(),
                notify: notify.clone(),
                frames: tx,
                backlog: backlog.clone(),
            });
        Registration {
            registry: self,
            device_id: device_id.to_owned(),
            id,
            notify,
            frames: rx,
            backlog,
        }
    }

    /// From now on, every notice also goes to the other nodes (see `bus.rs`).
    pub fn attach_bus(&self, bus: Bus) {
        let _ = self.bus.set(bus);
    }

    /// `None` without a bus; else whether it is connected now.
    pub fn bus_connected(&self) -> Option<bool> {
        self.bus.get().map(Bus::connected)
    }

    fn publish(&self, notice: impl FnOnce() -> Notice) {
        if let Some(bus) = self.bus.get() {
            bus.publish(notice());
        }
    }

    /// Tells every connection of `device_id`, on every node, that its queue has grown.
    pub fn wake(&self, device_id: &str) {
        self.wake_here(device_id);
        self.publish(|| Notice::Wake {
            device: device_id.to_owned(),
        });
    }

    /// [`Registry::wake`] for this node's connections only.
    pub fn wake_here(&self, device_id: &str) {
        if let Some(conns) = self.lock().get(device_id) {
            for c in conns {
                c.notify.notify_one();
            }
        }
    }

    /// Hands `envelope`, just committed for `device_id`, to that device's connections on
    /// this node, which saves each a read of its queue. A connection already holding
    /// [`MAX_PUSHED_BYTES`] is woken to read its queue instead, and gets no more pushes
    /// until it has (see [`Backlog`]). With a bus, every node is
    /// woken as before: a push from this node could overtake an envelope for the same
    /// device that another node committed first.
    pub fn deliver(&self, device_id: &str, envelope: DeliveredEnvelope) {
        if self.bus.get().is_some() {
            return self.wake(device_id);
        }
        let size = envelope.payload.len();
        if let Some(conns) = self.lock().get(device_id) {
            for c in conns {
                let b = &c.backlog;
                if !b.must_read.load(Ordering::SeqCst) {
                    if b.pushed_bytes.fetch_add(size, Ordering::Relaxed) + size <= MAX_PUSHED_BYTES
                        && c.frames
                            .send(ServerFrame::Envelope(envelope.clone()))
                            .is_ok()
                    {
                        continue;
                    }
                    b.pushed_bytes.fetch_sub(size, Ordering::Relaxed);
                }
                b.must_read.store(true, Ordering::SeqCst);
                c.notify.notify_one();
            }
        }
    }

    /// Sends `frame` on every open connection of `device_id`, on every node.
    pub fn push(&self, device_id: &str, frame: &ServerFrame) {
        self.push_here(device_id, frame);
        self.publish(|| Notice::Push {
            device: device_id.to_owned(),
            frame: frame.clone(),
        });
    }

    /// Sends `frame` to every open connection of each of `devices`, on every node, in a
    /// few bus notices rather than one per device (a group may have many followers).
    pub fn push_many(&self, devices: &[String], frame: &ServerFrame) {
        for d in devices {
            self.push_here(d, frame);
        }
        for chunk in devices.chunks(PUSH_CHUNK) {
            self.publish(|| Notice::PushMany {
                devices: chunk.to_vec(),
                frame: frame.clone(),
            });
        }
    }

    fn push_here(&self, device_id: &str, frame: &ServerFrame) {
        let live = matches!(frame, ServerFrame::Live(_));
        if let Some(conns) = self.lock().get(device_id) {
            for c in conns {
                if live && c.backlog.live.fetch_add(1, Ordering::Relaxed) >= MAX_LIVE_QUEUED {
                    c.backlog.live.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                let _ = c.frames.send(frame.clone());
            }
        }
    }

    /// Ends every connection of `device_id` (removed), on every node: each says `code`
    /// and closes.
    pub fn end_device(&self, device_id: &str, code: &str, message: &str) {
        self.push_here(device_id, &closing(code, message));
        self.publish(|| Notice::EndDevice {
            device: device_id.to_owned(),
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Ends every connection signed in with the session `session_hash` (signed out), on
    /// every node.
    pub fn end_session(&self, session_hash: &[u8], code: &str, message: &str) {
        self.end_session_here(session_hash, code, message);
        self.publish(|| Notice::EndSession {
            session_hash: sotto_core::b64::encode(session_hash),
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    /// [`Registry::end_session`] for this node's connections only.
    pub fn end_session_here(&self, session_hash: &[u8], code: &str, message: &str) {
        let frame = closing(code, message);
        for conns in self.lock().values() {
            for c in conns.iter().filter(|c| c.session_hash == session_hash) {
                let _ = c.frames.send(frame.clone());
            }
        }
    }

    /// What another node said, for the connections this node holds.
    pub fn apply(&self, notice: Notice) {
        match notice {
            Notice::Wake { device } => self.wake_here(&device),
            Notice::Push { device, frame } => self.push_here(&device, &frame),
            Notice::PushMany { devices, frame } => {
                for d in &devices {
                    self.push_here(d, &frame);
                }
            }
            Notice::EndDevice {
                device,
                code,
                message,
            } => self.push_here(&device, &closing(&code, &message)),
            Notice::EndSession {
                session_hash,
                code,
                message,
            } => {
                if let Ok(hash) = sotto_core::b64::decode(&session_hash) {
                    self.end_session_here(&hash, &code, &message);
                }
            }
        }
    }

    /// The sessions (token hashes) with a connection on this node.
    pub fn sessions(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .lock()
            .values()
            .flatten()
            .map(|c| c.session_hash.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The devices with a connection on this node.
    pub fn devices(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn too_many(message: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        message,
    )
    .retry_after(30)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> ServerFrame {
        ServerFrame::Live(DeliveredEnvelope {
            seq: 0,
            sender_user: "u".into(),
            sender_device: "d".into(),
            accepted_at: 1,
            payload: vec![1; 8 * 1024],
        })
    }

    /// A connection that reads nothing holds at most `MAX_LIVE_QUEUED` typing notices;
    /// the frames the server itself must deliver still queue, and once the socket has
    /// written some notices, new ones are taken again.
    #[test]
    fn a_connection_that_does_not_read_holds_a_bounded_number_of_live_frames() {
        let registry = Registry::default();
        let mut reg = registry.register("dev", b"session");
        for _ in 0..MAX_LIVE_QUEUED + 50 {
            registry.push("dev", &live());
        }
        registry.push(
            "dev",
            &ServerFrame::DevicesChanged {
                user_id: "u".into(),
            },
        );
        let mut live_frames = 0;
        let mut others = 0;
        while let Ok(frame) = reg.frames.try_recv() {
            if matches!(frame, ServerFrame::Live(_)) {
                live_frames += 1;
                reg.backlog.written(&frame);
            } else {
                others += 1;
            }
        }
        assert_eq!((live_frames, others), (MAX_LIVE_QUEUED, 1));
        registry.push("dev", &live());
        assert!(matches!(reg.frames.try_recv(), Ok(ServerFrame::Live(_))));
    }

    fn envelope(seq: i64, bytes: usize) -> DeliveredEnvelope {
        DeliveredEnvelope {
            seq,
            sender_user: "u".into(),
            sender_device: "d".into(),
            accepted_at: 1,
            payload: vec![7; bytes],
        }
    }

    /// A connection that reads nothing is pushed at most `MAX_PUSHED_BYTES` of envelopes;
    /// then it is woken to read its queue, and nothing more is pushed (not even a small
    /// envelope that would fit) until it does, so nothing overtakes what it must read.
    #[test]
    fn a_connection_that_does_not_read_is_pushed_a_bounded_amount_then_reads_its_queue() {
        let registry = Registry::default();
        let mut reg = registry.register("dev", b"session");
        let size = 40 * 1024;
        let fit = MAX_PUSHED_BYTES / size;
        for seq in 1..=fit as i64 + 3 {
            registry.deliver("dev", envelope(seq, size));
        }
        let mut pushed = Vec::new();
        while let Ok(frame) = reg.frames.try_recv() {
            reg.backlog.written(&frame);
            if let ServerFrame::Envelope(e) = frame {
                pushed.push(e.seq);
            }
        }
        assert_eq!(pushed, (1..=fit as i64).collect::<Vec<_>>());
        // Woken to read the rest, and a small one now waits for that read too.
        let woken = reg.notify.notified();
        tokio::pin!(woken);
        assert!(woken.as_mut().enable(), "the connection was woken");
        registry.deliver("dev", envelope(100, 10));
        assert!(reg.frames.try_recv().is_err());
        // Once it reads its queue, pushes go again.
        reg.backlog.reading();
        registry.deliver("dev", envelope(101, 10));
        assert!(matches!(reg.frames.try_recv(), Ok(ServerFrame::Envelope(e)) if e.seq == 101));
    }
}
