//! One device's delivery WebSocket (`GET /v1/ws`).
//!
//! 1. The client's first frame is `auth` with its session token and device id (within 10 s).
//! 2. The server answers `ready`, then sends the device's queue, oldest first.
//! 3. Each `ack` deletes that envelope; new envelopes are sent as they arrive.
//! 4. When the session expires, is signed out (`session_revoked`) or the device is removed
//!    (`device_removed`), the server says `error` and closes at once.

use super::queue;
use crate::auth::session;
use crate::error::ApiError;
use crate::origin::origin_allowed;
use crate::state::SharedState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use sotto_core::protocol::{ClientFrame, ServerFrame};
use std::time::Duration;

/// Largest frame a client may send before it has signed in (`auth`), and its read buffer.
const MAX_CLIENT_FRAME: usize = 4 * 1024;
/// Largest frame after: a `send` carries a whole send's envelopes, as `POST /v1/envelopes`.
const MAX_SEND_FRAME: usize = crate::routes::envelopes::MAX_BODY;
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: i64 = 100;

pub async fn upgrade(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.config, &headers) {
        return ApiError::forbidden("origin_not_allowed", "this web origin may not connect")
            .into_response();
    }
    // Small buffers: a client sends only tiny frames, and at 10,000 connections the
    // default 128 KiB read buffer each would be over a gigabyte.
    ws.max_message_size(MAX_SEND_FRAME)
        .max_frame_size(MAX_SEND_FRAME)
        .read_buffer_size(MAX_CLIENT_FRAME)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(reason) = run(state, socket).await {
                tracing::debug!(%reason, "delivery socket closed");
            }
        })
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|e| e.to_string())?;
    socket
        .send(Message::Text(text.into()))
        .await
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

async fn run(state: SharedState, mut socket: WebSocket) -> Result<(), String> {
    let first = match tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.len() <= MAX_CLIENT_FRAME => t,
        Ok(Some(Ok(Message::Text(_)))) => {
            return refuse(&mut socket, "auth_required", "the first frame must be auth").await
        }
        Ok(_) => return Err("closed before auth".into()),
        Err(_) => return refuse(&mut socket, "auth_timeout", "send an auth frame first").await,
    };
    let Ok(ClientFrame::Auth { token, device_id }) = serde_json::from_str::<ClientFrame>(&first)
    else {
        return refuse(&mut socket, "auth_required", "the first frame must be auth").await;
    };
    let checked = {
        let device_id = device_id.clone();
        state
            .db
            .call(move |conn| {
                let who = session::lookup(conn, &token)?;
                if !crate::routes::devices::owns_device(conn, &who.user.id, &device_id)? {
                    return Err(ApiError::forbidden(
                        "unknown_device",
                        "this device is not registered to you",
                    ));
                }
                Ok(who)
            })
            .await
    };
    let who = match checked {
        Ok(who) => who,
        Err(e) => return refuse(&mut socket, e.code, &e.message).await,
    };

    // Register before reading the queue, so nothing that arrives meanwhile goes unnoticed.
    let mut registration = state.registry.register(&device_id, &who.session_hash);
    send(
        &mut socket,
        &ServerFrame::Ready {
            device_id: device_id.clone(),
        },
    )
    .await?;
    tracing::debug!(user = %who.user.id, device = %device_id, "device connected");

    let mut last_sent = 0i64;
    flush(&state, &mut socket, &device_id, &mut last_sent).await?;
    // Link requests made while this device was away.
    let (user_id, device) = (who.user.id.clone(), device_id.clone());
    let waiting = state
        .db
        .call(move |conn| crate::routes::links::pending_for_device(conn, &user_id, &device))
        .await
        .map_err(|e| e.message)?;
    for request in waiting {
        send(&mut socket, &ServerFrame::LinkRequest(request)).await?;
    }
    // A device short of one-time prekeys tops them up as soon as it hears.
    let device = device_id.clone();
    let remaining = state
        .db
        .call(move |conn| {
            crate::routes::keys::prekey_count(conn, &device).map_err(crate::error::ApiError::from)
        })
        .await
        .map_err(|e| e.message)?;
    if remaining < crate::routes::keys::PREKEYS_LOW {
        let frame = ServerFrame::PrekeysLow {
            remaining: remaining as u32,
        };
        send(&mut socket, &frame).await?;
    }

    let until_expiry = Duration::from_secs((who.expires_at - crate::db::now_secs()).max(0) as u64);
    let expiry = tokio::time::sleep(until_expiry);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = registration.notify.notified() => {
                flush(&state, &mut socket, &device_id, &mut last_sent).await?;
            }
            Some(frame) = registration.frames.recv() => {
                // Signed out or removed elsewhere: say so and close at once.
                if let ServerFrame::Error { code, message } = &frame {
                    return refuse(&mut socket, code, message).await;
                }
                send(&mut socket, &frame).await?;
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientFrame>(&t) {
                    Ok(ClientFrame::Ack { seq }) => {
                        let device = device_id.clone();
                        state.writer.ack(device, seq);
                    }
                    Ok(ClientFrame::Retry { seq }) => {
                        state.writer.retry(who.user.id.clone(), device_id.clone(), seq);
                    }
                    Ok(ClientFrame::Send { id, request }) => {
                        let frame = if request.sender_device != device_id {
                            let e = ApiError::forbidden("unknown_device", "send from the device this socket signed in as");
                            ServerFrame::Refused { id, error: e.body().error }
                        } else {
                            match crate::routes::envelopes::store(&state, &who, request).await {
                                Ok(receipt) => ServerFrame::Stored { id, receipt },
                                Err(e) => ServerFrame::Refused { id, error: e.body().error },
                            }
                        };
                        send(&mut socket, &frame).await?;
                    }
                    _ => return refuse(&mut socket, "bad_frame", "expected an ack, retry or send frame").await,
                },
                Some(Ok(Message::Binary(_))) => return refuse(&mut socket, "bad_frame", "frames are JSON text").await,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
            _ = &mut expiry => {
                return refuse(&mut socket, "session_expired", "the session has expired; sign in again").await;
            }
        }
    }
}

/// Sends everything queued for the device after `last_sent`.
async fn flush(
    state: &SharedState,
    socket: &mut WebSocket,
    device_id: &str,
    last_sent: &mut i64,
) -> Result<(), String> {
    loop {
        let (device, after) = (device_id.to_owned(), *last_sent);
        let batch = state
            .db
            .call(move |conn| queue::pending(conn, &device, after, BATCH))
            .await
            .map_err(|e| e.to_string())?;
        let full = batch.len() as i64 == BATCH;
        for env in batch {
            *last_sent = env.seq;
            send(socket, &ServerFrame::Envelope(env)).await?;
        }
        if !full {
            return Ok(());
        }
    }
}
