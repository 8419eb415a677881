//! One device's delivery WebSocket (`GET /v1/ws`).
//!
//! 1. The client offers the WebSocket protocols `sotto`, `bearer.<session token>` and
//!    `device.<device id>` (a browser cannot set headers on a WebSocket; the token stays out
//!    of URLs and so out of access logs). They are checked *before* the upgrade: without
//!    them there is no socket; with bad ones, the socket says why and closes without
//!    reading a frame. The answer picks `sotto`. Connections are limited per user and per
//!    client address.
//! 2. The server sends `ready`, then the device's queue, oldest first.
//! 3. Each `ack` deletes that envelope; new envelopes are sent as they arrive (pushed by the
//!    group commit, or read from the queue when woken: see `cursor.rs`).
//! 4. The server pings every 30 s and closes a connection silent for 75 s.
//! 5. When the session expires, is signed out (`session_revoked`) or the device is removed
//!    (`device_removed`), the server says `error` and closes at once.
//! 6. When the server stops, it closes with 1001 "going away"; clients reconnect.

use super::cursor::Cursor;
use super::queue;
use super::registry::{Backlog, ConnectionPermit};
use crate::auth::rate_limit;
use crate::auth::session::{self, AuthUser};
use crate::error::ApiError;
use crate::origin::origin_allowed;
use crate::state::SharedState;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use sotto_core::protocol::{ClientFrame, SendRequest, ServerFrame};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Read buffer per connection: clients send small frames, and at 10,000 connections the
/// default 128 KiB each would be over a gigabyte.
const READ_BUFFER: usize = 4 * 1024;
/// Largest frame: a `send` carries a whole send's envelopes, as `POST /v1/envelopes`.
const MAX_SEND_FRAME: usize = crate::routes::envelopes::MAX_BODY;
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENT_LIMIT: Duration = Duration::from_secs(75);
/// How long one frame may take to go out: a peer that stops reading is dropped, rather
/// than holding this connection (and what is queued for it) forever.
const WRITE_LIMIT: Duration = Duration::from_secs(30);
/// The protocol the server speaks, picked from what the client offers.
const PROTOCOL: &str = "sotto";
/// Send frames, and the bytes of their text, that may wait behind the one being stored;
/// past either, the socket reads no more frames until one is done, so a flood of sends
/// holds a bounded amount of memory (at most one more frame than this). Each waiting send
/// has passed `check_envelopes`, so it holds about as much as its text.
const MAX_WAITING_SENDS: usize = 16;
const MAX_WAITING_BYTES: usize = 1024 * 1024;

/// The session token and device a client offers as WebSocket protocols.
fn offered_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let offered: Vec<&str> = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !offered.contains(&PROTOCOL) {
        return None;
    }
    let token = offered.iter().find_map(|p| p.strip_prefix("bearer."))?;
    let device = offered.iter().find_map(|p| p.strip_prefix("device."))?;
    Some((token.to_owned(), device.to_owned()))
}

#[utoipa::path(get, path = "/v1/ws", tag = "delivery",
    description = "The delivery WebSocket. Offer the subprotocols `sotto`, `bearer.<session token>` and `device.<device ID>`; frames are described in PROTOCOL.md.",
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
pub async fn upgrade(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.config, &headers) {
        return ApiError::forbidden("origin_not_allowed", "this web origin may not connect")
            .into_response();
    }
    let Some((token, device_id)) = offered_credentials(&headers) else {
        return ApiError::unauthorized(
            "auth_required",
            "offer the WebSocket protocols sotto, bearer.<session token> and device.<device id>",
        )
        .into_response();
    };
    let checked = {
        let device_id = device_id.clone();
        state
            .db
            .read_now(move |conn| {
                let who = session::lookup(conn, &token)?;
                if !crate::devices::owns_device(conn, &who.user.id, &device_id)? {
                    return Err(ApiError::forbidden(
                        "unknown_device",
                        "this device is not registered to you",
                    ));
                }
                Ok(who)
            })
            .await
    };
    let ip = rate_limit::client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let admitted = checked.and_then(|who| {
        let permit = state.registry.admit(
            &who.user.id,
            &rate_limit::address_key(ip),
            state.config.max_connections_per_address,
        )?;
        Ok((who, permit))
    });
    // A refusal still upgrades, says why in an `error` frame and closes without reading
    // anything: a browser sees no HTTP status on a failed WebSocket, and the client acts
    // on the code (an expired session asks for a new token).
    ws.protocols([PROTOCOL])
        .max_message_size(MAX_SEND_FRAME)
        .max_frame_size(MAX_SEND_FRAME)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |mut socket| async move {
            let result = match admitted {
                Ok((who, permit)) => run(state, socket, who, device_id, permit).await,
                Err(e) => refuse(&mut socket, e.code, &e.message).await,
            };
            if let Err(reason) = result {
                tracing::debug!(%reason, "delivery socket closed");
            }
        })
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    tokio::time::timeout(WRITE_LIMIT, socket.send(Message::Text(text.into())))
        .await
        .map_err(|_| "the peer stopped reading".to_owned())?
        .map_err(|e| e.to_string())
}

async fn refuse(socket: &mut WebSocket, code: &str, message: &str) -> Result<(), String> {
    let _ = send(
        socket,
        &ServerFrame::Error {
            code: code.into(),
            message: message.into(),
        },
    )
    .await;
    let _ = socket.send(Message::Close(None)).await;
    Err(code.into())
}

async fn run(
    state: SharedState,
    mut socket: WebSocket,
    who: AuthUser,
    device_id: String,
    _permit: ConnectionPermit,
) -> Result<(), String> {
    // Counted until it ends, so a stopping server waits for it.
    state.open_sockets.send_modify(|n| *n += 1);
    let _counted = OpenSocket(&state.open_sockets);
    // Register before reading the queue, so nothing that arrives meanwhile goes unnoticed.
    let mut registration = state.registry.register(&device_id, &who.session_hash);
    // Checked again now that sign-outs and removals can find this socket: one that landed
    // between the check at the upgrade and the registration would otherwise be missed.
    if !still_live(&state, &who.session_hash, &device_id).await? {
        return refuse(
            &mut socket,
            "session_revoked",
            "this session or device just ended",
        )
        .await;
    }
    send(
        &mut socket,
        &ServerFrame::Ready {
            device_id: device_id.clone(),
        },
    )
    .await?;
    tracing::debug!(user = %who.user.id, device = %device_id, "device connected");

    let mut cursor = Cursor::default();
    flush(
        &state,
        &mut socket,
        &registration.backlog,
        &device_id,
        &mut cursor,
    )
    .await?;
    // Link requests made while this device was away.
    let (user_id, device) = (who.user.id.clone(), device_id.clone());
    let waiting = state
        .db
        .read(move |conn| crate::links::pending_for_device(conn, &user_id, &device))
        .await
        .map_err(|e| e.message)?;
    for request in waiting {
        send(&mut socket, &ServerFrame::LinkRequest(request)).await?;
    }
    // A device short of one-time prekeys tops them up as soon as it hears.
    let device = device_id.clone();
    let remaining = state
        .db
        .read(move |conn| {
            crate::keys::prekey_count(conn, &device).map_err(crate::error::ApiError::from)
        })
        .await
        .map_err(|e| e.message)?;
    if remaining < crate::keys::PREKEYS_LOW {
        let frame = ServerFrame::PrekeysLow {
            remaining: remaining as u32,
        };
        send(&mut socket, &frame).await?;
    }

    let until_expiry = Duration::from_secs((who.expires_at - crate::db::now_secs()).max(0) as u64);
    let expiry = tokio::time::sleep(until_expiry);
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let mut draining = state.draining.subscribe();
    // Sends are stored one at a time, in the order they came, while deliveries and acks go
    // on: a device that sends does not hold up what it receives.
    let mut storing: Option<Storing> = None;
    let mut waiting: std::collections::VecDeque<(u64, SendRequest, usize)> = Default::default();
    let mut waiting_bytes = 0;
    loop {
        tokio::select! {
            // The server is stopping: "going away" (1001), so the client reconnects, to
            // another node if there is one. A send in progress was answered first.
            _ = async { drop(draining.wait_for(|stopping| *stopping).await) } => {
                answer_storing(&mut socket, storing.take()).await;
                let frame = CloseFrame { code: close_code::AWAY, reason: "server going away".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return Ok(());
            }
            _ = ping.tick() => {
                // A browser answers pings by itself; silence means the peer is gone.
                if last_heard.elapsed() > SILENT_LIMIT {
                    return refuse(&mut socket, "timeout", "no answer to pings").await;
                }
                // A sign-out, removal or disabled account elsewhere (another node, whose
                // notice can be lost, or the CLI, which sends none) ends the session in the
                // database: the database decides, at every ping.
                if !still_live(&state, &who.session_hash, &device_id).await?
                {
                    return refuse(&mut socket, "session_revoked", "this session or device has ended").await;
                }
                socket.send(Message::Ping(Vec::new().into())).await.map_err(|e| e.to_string())?;
            }
            _ = registration.notify.notified() => {
                flush(&state, &mut socket, &registration.backlog, &device_id, &mut cursor).await?;
            }
            Some(frame) = registration.frames.recv() => {
                registration.backlog.written(&frame);
                match frame {
                    // Pushed by the group commit (see `cursor.rs`).
                    ServerFrame::Envelope(env) => {
                        if cursor.take_pushed(env.seq) {
                            send_envelope(&mut socket, env).await?;
                        }
                        if cursor.should_read() {
                            flush(&state, &mut socket, &registration.backlog, &device_id, &mut cursor).await?;
                        }
                    }
                    // Signed out or removed elsewhere: say so and close at once (the send
                    // under way is answered first, as it may be stored already).
                    ServerFrame::Error { code, message } => {
                        answer_storing(&mut socket, storing.take()).await;
                        return refuse(&mut socket, &code, &message).await;
                    }
                    other => send(&mut socket, &other).await?,
                }
            }
            // The send being stored is answered; the next waiting one starts.
            answer = async { storing.as_mut().expect("only when storing").await }, if storing.is_some() => {
                storing = waiting.pop_front().map(|(id, request, bytes)| {
                    waiting_bytes -= bytes;
                    store_send(&state, &who, &device_id, id, request)
                });
                send(&mut socket, &answer).await?;
            }
            msg = socket.recv(), if waiting.len() < MAX_WAITING_SENDS && waiting_bytes < MAX_WAITING_BYTES => { last_heard = Instant::now(); match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientFrame>(&t) {
                    Ok(ClientFrame::Ack { seq }) => {
                        let device = device_id.clone();
                        state.writer.ack(device, seq);
                    }
                    Ok(ClientFrame::Retry { seq }) => {
                        state.writer.retry(who.user.id.clone(), device_id.clone(), seq);
                    }
                    Ok(ClientFrame::Send { id, request }) => {
                        // Malformed sends are refused at once, so what waits is bounded
                        // by the frames' sizes.
                        if let Err(e) = crate::routes::envelopes::check_send(&request) {
                            send(&mut socket, &ServerFrame::Refused { id, error: e.body().error }).await?;
                        } else if storing.is_none() {
                            storing = Some(store_send(&state, &who, &device_id, id, request));
                        } else {
                            waiting_bytes += t.len();
                            waiting.push_back((id, request, t.len()));
                        }
                    }
                    _ => return refuse(&mut socket, "bad_frame", "expected an ack, retry or send frame").await,
                },
                Some(Ok(Message::Binary(_))) => return refuse(&mut socket, "bad_frame", "frames are JSON text").await,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            } }
            _ = &mut expiry => {
                answer_storing(&mut socket, storing.take()).await;
                return refuse(&mut socket, "session_expired", "the session has expired; sign in again").await;
            }
        }
    }
}

/// Lets the send under way finish and answers it, before the socket closes: it may be
/// stored already, and a client told nothing would send it again.
async fn answer_storing(socket: &mut WebSocket, storing: Option<Storing>) {
    if let Some(storing) = storing {
        if let Ok(answer) = tokio::time::timeout(Duration::from_secs(5), storing).await {
            let _ = send(socket, &answer).await;
        }
    }
}

/// A send frame being stored; it ends in the frame that answers it.
type Storing = std::pin::Pin<Box<dyn std::future::Future<Output = ServerFrame> + Send>>;

/// Stores send `id` from this socket's device, as `POST /v1/envelopes` would.
fn store_send(
    state: &SharedState,
    who: &AuthUser,
    device_id: &str,
    id: u64,
    request: SendRequest,
) -> Storing {
    let (state, who) = (state.clone(), who.clone());
    let own_device = request.sender_device == device_id;
    Box::pin(async move {
        if !own_device {
            let e = ApiError::forbidden(
                "unknown_device",
                "send from the device this socket signed in as",
            );
            return ServerFrame::Refused {
                id,
                error: e.body().error,
            };
        }
        match crate::routes::envelopes::store(&state, &who, request).await {
            Ok(receipt) => ServerFrame::Stored { id, receipt },
            Err(e) => ServerFrame::Refused {
                id,
                error: e.body().error,
            },
        }
    })
}

/// Takes one socket off the count of open ones when it ends, however it ends.
struct OpenSocket<'a>(&'a tokio::sync::watch::Sender<usize>);

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Whether the session `session_hash` is still signed in, unexpired, and its user still
/// has `device`.
async fn still_live(
    state: &SharedState,
    session_hash: &[u8],
    device: &str,
) -> Result<bool, String> {
    let (token_hash, device) = (session_hash.to_vec(), device.to_owned());
    state
        .db
        .read_now(move |conn| {
            let live: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sessions s JOIN devices d ON d.user_id = s.user_id
                 JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND d.id = ?2 AND s.expires_at > ?3 AND u.disabled = 0)",
                crate::params![token_hash, device, crate::db::now_secs()],
                |r| r.get(0),
            )?;
            Ok::<_, ApiError>(live)
        })
        .await
        .map_err(|e| e.message)
}

/// Reads the device's queue after the cursor and sends what this connection has not sent.
async fn flush(
    state: &SharedState,
    socket: &mut WebSocket,
    backlog: &Backlog,
    device_id: &str,
    cursor: &mut Cursor,
) -> Result<(), String> {
    backlog.reading();
    let read = cursor.begin_read();
    loop {
        let (device, after) = (device_id.to_owned(), cursor.read_after());
        let batch = state
            .db
            .read(move |conn| queue::pending(conn, &device, after))
            .await
            .map_err(|e| e.to_string())?;
        let full = batch.len() == queue::PENDING_BATCH;
        for env in batch {
            if cursor.take_read(env.seq) {
                send_envelope(socket, env).await?;
            }
        }
        if !full {
            cursor.end_read(read);
            return Ok(());
        }
    }
}

/// Sends one queued envelope, counted in the metrics.
async fn send_envelope(
    socket: &mut WebSocket,
    env: sotto_core::protocol::DeliveredEnvelope,
) -> Result<(), String> {
    let waited = crate::db::now_millis().saturating_sub(env.accepted_at);
    send(socket, &ServerFrame::Envelope(env)).await?;
    let metrics = crate::metrics::metrics();
    metrics.deliveries.inc();
    metrics
        .delivery_latency
        .observe(waited.max(0) as f64 / 1000.0);
    Ok(())
}
