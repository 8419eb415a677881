//! The wire protocol between the client and the server, version [`PROTOCOL_VERSION`]:
//! the JSON bodies of the HTTP API and the JSON frames of the delivery WebSocket.
//! Binary fields travel as base64 strings. Everything the server stores or forwards of a
//! message is an opaque [`OutgoingEnvelope::payload`]; its format is in [`crate::sealing`].

use crate::identity::{IdentityPublic, SignedDeviceList};
use crate::prekeys::{PreKeyPublic, SignedPreKey};
use serde::{Deserialize, Serialize};

/// Bumped whenever a change here would break an older peer.
pub const PROTOCOL_VERSION: u16 = 2;

/// `POST /v1/auth/jwt`: sign in with a JWT that the site's backend signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwtSignIn {
    /// Optional: the server can tell the org from the token (its `org` or `iss` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub jwt: String,
}

/// `POST /v1/auth/ephemeral`: sign in as a temporary visitor with an org's ephemeral token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EphemeralSignIn {
    /// Optional: the server can find the org that issued the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The answer to a sign-in: a server session token (sent as `Authorization: Bearer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub token: String,
    /// Unix seconds; never later than the JWT's own `exp`.
    pub expires_at: i64,
    pub org: String,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    /// The user's own tag, without the `@`.
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub ephemeral: bool,
}

/// `POST /v1/devices`: publish this device's public key (idempotent per key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterDevice {
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub public_key: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A device as anyone in the org may see it: `GET /v1/users/{id}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    pub id: String,
    pub user_id: String,
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub public_key: Vec<u8>,
}

/// `PUT /v1/identity`: publish the user's identity and the device list it signed. A list
/// must name the caller's own devices only and be newer than the one it replaces; a new
/// identity (the user lost their keys) replaces the old one and its whole list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishIdentity {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub identity: IdentityPublic,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub device_list: SignedDeviceList,
}

/// `GET /v1/users/{id}/keys`: what a sender needs to check a user's devices. The client
/// verifies `device_list` with `identity` (and `identity` against what it pinned) and sends
/// to the listed devices that `devices` still names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserKeys {
    pub user_id: String,
    /// Absent until the user's first device has published one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub identity: Option<IdentityPublic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub device_list: Option<SignedDeviceList>,
    /// The devices the server currently holds for the user (a listed device that was
    /// removed is not here).
    pub devices: Vec<String>,
    /// The site disabled this account: it cannot sign in, and reads nothing until enabled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// `POST /v1/devices/{id}/prekeys`: this device's signed prekey (when new) and more
/// one-time prekeys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadPrekeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signed_prekey: Option<SignedPreKey>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub one_time_prekeys: Vec<PreKeyPublic>,
}

/// The answer to an upload: how many one-time prekeys the server now holds for the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrekeyCount {
    pub one_time_prekeys: u32,
}

/// `POST /v1/bundles`: claim one prekey bundle per device (each one-time prekey is handed
/// out once, then deleted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimBundles {
    pub devices: Vec<String>,
}

/// `POST /v1/resolve`: resolve a thread expression.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolveRequest {
    pub expr: String,
}

/// The users an expression names, and the canonical expression for exactly those users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolved {
    pub users: Vec<User>,
    pub canonical: String,
    /// The groups the expression named, whose members may change later: a thread made from
    /// it follows them (see `ServerFrame::GroupChanged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// `POST /v1/envelopes`: one sealed envelope per recipient device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendRequest {
    /// This (sending) device; the server checks that it belongs to the signed-in user.
    pub sender_device: String,
    /// The users the message is for (the sender included, for their other devices). The
    /// server refuses the send with `409 devices_changed` ([`DevicesChanged`]) when it misses
    /// a current device of one of them, or names a device that is not current.
    #[serde(default)]
    pub recipients: Vec<String>,
    pub envelopes: Vec<OutgoingEnvelope>,
    /// Answers the retry request for this device's envelope `seq`: one envelope, to the
    /// device that asked, exempt from the every-current-device rule (see PROTOCOL.md,
    /// "Retry receipts"). The server accepts it only while that request is queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_of: Option<i64>,
    /// Only for the recipient devices connected now, never stored or queued (a typing
    /// notice): the server hands each envelope to the sockets open at this moment, as a
    /// [`ServerFrame::Live`], and answers with a receipt of no seqs. The devices named
    /// may be any of the recipients' current ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutgoingEnvelope {
    pub device_id: String,
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub payload: Vec<u8>,
}

/// Sent once every envelope of a [`SendRequest`] is stored durably.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendReceipt {
    pub stored: usize,
    /// Unix milliseconds at which the server accepted the envelopes.
    pub accepted_at: i64,
    /// Each envelope's sequence number, in the order sent; a `delivered` frame names it
    /// when the recipient device acknowledges it.
    #[serde(default)]
    pub seqs: Vec<i64>,
}

/// The `details` of a `409 devices_changed` answer to a send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DevicesChanged {
    /// Current devices of the recipients that the send missed.
    pub missing: Vec<String>,
    /// Devices the send named that are no longer current.
    pub stale: Vec<String>,
}

/// The body of every 4xx/5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `token_expired`.
    pub code: String,
    pub message: String,
    /// For expression errors: the character position of the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// Structured details for codes that need them (e.g. [`DevicesChanged`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// `POST /v1/links`: a new browser asks the user's running browsers to approve it. It sends
/// only a commitment to its key (see [`crate::linking`]); the key follows once a running
/// browser has answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkCreate {
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub commitment: Vec<u8>,
}

/// A link request as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkRequest {
    pub id: String,
    /// SHA-256 commitment to the new browser's ephemeral key.
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub commitment: Vec<u8>,
    /// `pending` (waiting for a running browser), `accepted` (one answered with its key),
    /// `revealed` (the new browser sent its key), `approved`, `declined` or `consumed` (the
    /// new browser took the approval).
    pub status: String,
    /// Unix seconds; a request lives ten minutes.
    pub expires_at: i64,
    /// The answering running browser's ephemeral key, once `accepted`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::b64::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Byte))]
    pub running_public: Option<Vec<u8>>,
    /// The new browser's ephemeral key, once `revealed`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::b64::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Byte))]
    pub new_public: Option<Vec<u8>>,
    /// Present once approved: the bundle, encrypted under the key both browsers derived.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::b64::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Byte))]
    pub sealed: Option<Vec<u8>>,
}

/// `POST /v1/links/{id}/accept`: a running browser answers with its ephemeral key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkAccept {
    pub device_id: String,
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub ephemeral_public: Vec<u8>,
}

/// `POST /v1/links/{id}/reveal`: the new browser's key, after the running browser's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkReveal {
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub ephemeral_public: Vec<u8>,
}

/// `POST /v1/links/{id}/approve`: the running browser's sealed bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkApprove {
    pub device_id: String,
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub sealed: Vec<u8>,
}

/// Frames from a client on the delivery WebSocket (`GET /v1/ws`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The envelope is safely handled on the device: the server may delete it.
    Ack { seq: i64 },
    /// The envelope could not be opened (no session, a lost key, a broken chain): the
    /// server deletes it, does not report it delivered, and queues a [`retry_request`] for
    /// the device that sent it, which sends the message again on a fresh session.
    Retry { seq: i64 },
    /// The same as `POST /v1/envelopes`, on the open socket (a browser's `fetch` costs
    /// milliseconds): answered by `stored` or `refused` with the same `id`.
    Send { id: u64, request: SendRequest },
}

/// How every payload that the server itself makes starts (a retry request, an expiry
/// notice). The server refuses client envelopes that start so.
pub const SERVER_MADE_PREFIX: &[u8] = b"\0sotto-";

/// How a retry request's payload starts. Only the server makes these, from a recipient's
/// [`ClientFrame::Retry`]; they carry no secret, like Signal's plaintext decryption-error
/// messages.
pub const RETRY_REQUEST_PREFIX: &[u8] = b"\0sotto-retry\0";

/// How an expiry notice's payload starts: the server tells a sender that envelopes it sent
/// to one device (the notice's labelled sender) waited past the server's maximum age and
/// were deleted unread. No secret either: the seqs are the server's own numbers.
pub const EXPIRED_NOTICE_PREFIX: &[u8] = b"\0sotto-expired\0";

/// The most seqs one expiry notice names (8 bytes each).
pub const MAX_SEQS_PER_EXPIRED_NOTICE: usize = 512;

/// The notice that envelopes `seqs` expired (at most [`MAX_SEQS_PER_EXPIRED_NOTICE`]).
pub fn expired_notice(seqs: &[i64]) -> Vec<u8> {
    let mut out = EXPIRED_NOTICE_PREFIX.to_vec();
    for seq in seqs.iter().take(MAX_SEQS_PER_EXPIRED_NOTICE) {
        out.extend_from_slice(&seq.to_be_bytes());
    }
    out
}

/// The envelopes an expiry notice names, if `payload` is one.
pub fn parse_expired_notice(payload: &[u8]) -> Option<Vec<i64>> {
    let rest = payload.strip_prefix(EXPIRED_NOTICE_PREFIX)?;
    if rest.is_empty() || rest.len() % 8 != 0 || rest.len() / 8 > MAX_SEQS_PER_EXPIRED_NOTICE {
        return None;
    }
    Some(
        rest.chunks_exact(8)
            .map(|c| i64::from_be_bytes(c.try_into().expect("8")))
            .collect(),
    )
}

/// The payload asking a sender to send its envelope `seq` again.
pub fn retry_request(seq: i64) -> Vec<u8> {
    let mut out = RETRY_REQUEST_PREFIX.to_vec();
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// The envelope a retry request names, if `payload` is one.
pub fn parse_retry_request(payload: &[u8]) -> Option<i64> {
    let rest = payload.strip_prefix(RETRY_REQUEST_PREFIX)?;
    Some(i64::from_be_bytes(rest.try_into().ok()?))
}

/// Frames from the server on the delivery WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication succeeded; queued envelopes follow, oldest first.
    Ready {
        device_id: String,
    },
    Envelope(DeliveredEnvelope),
    /// An envelope sent live (`SendRequest::live`) while this device was connected: it has
    /// no seq (0) and is neither acknowledged nor delivered again.
    Live(DeliveredEnvelope),
    /// The envelope `seq` that this device sent has been acknowledged by its recipient.
    Delivered {
        seq: i64,
    },
    /// A new browser of this user asks to be linked; show it and let the user decide.
    LinkRequest(LinkRequest),
    /// This device's stock of one-time prekeys is low: upload more.
    PrekeysLow {
        remaining: u32,
    },
    /// The user's signed device list changed (a device was linked or removed).
    DevicesChanged {
        user_id: String,
    },
    /// The members of the group `group` changed (the site's backend changed them): threads
    /// that name it resolve their members again. Sent to the devices of its old and new
    /// members.
    GroupChanged {
        group: String,
    },
    /// A `send` frame's envelopes are stored.
    Stored {
        id: u64,
        receipt: SendReceipt,
    },
    /// A `send` frame was refused, with the error `POST /v1/envelopes` would have given.
    Refused {
        id: u64,
        error: ErrorDetail,
    },
    /// The connection is about to close for the reason given.
    Error {
        code: String,
        message: String,
    },
}

impl ServerFrame {
    /// Parses a frame in two passes: its `type`, then that variant's fields alone. The
    /// wire format is the derived (internally tagged) one; this way costs the wasm client
    /// far less code than serde's buffering of an internally tagged enum.
    pub fn from_json(text: &str) -> Result<ServerFrame, serde_json::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        /// The one field of `ready`, `group_changed` or `devices_changed`: one type, so the
        /// client carries one parser for the three.
        #[derive(Deserialize)]
        struct Named {
            #[serde(alias = "device_id", alias = "group", alias = "user_id")]
            name: String,
        }
        /// The one number of `delivered` or `prekeys_low`, likewise.
        #[derive(Deserialize)]
        struct Counted {
            #[serde(alias = "seq", alias = "remaining")]
            n: i64,
        }
        /// The answer to a send, `stored` (with its receipt) or `refused` (with its error).
        #[derive(Deserialize)]
        struct Answer {
            id: u64,
            receipt: Option<SendReceipt>,
            error: Option<ErrorDetail>,
        }
        let tag: Tag<'_> = serde_json::from_slice(text.as_bytes())?;
        Ok(match tag.kind.as_ref() {
            "ready" => {
                let Named { name } = serde_json::from_slice(text.as_bytes())?;
                ServerFrame::Ready { device_id: name }
            }
            "envelope" => ServerFrame::Envelope(serde_json::from_slice(text.as_bytes())?),
            "live" => ServerFrame::Live(serde_json::from_slice(text.as_bytes())?),
            "delivered" => {
                let Counted { n } = serde_json::from_slice(text.as_bytes())?;
                ServerFrame::Delivered { seq: n }
            }
            "link_request" => ServerFrame::LinkRequest(serde_json::from_slice(text.as_bytes())?),
            "prekeys_low" => {
                let Counted { n } = serde_json::from_slice(text.as_bytes())?;
                let remaining = u32::try_from(n).map_err(Error::custom)?;
                ServerFrame::PrekeysLow { remaining }
            }
            "devices_changed" => {
                let Named { name } = serde_json::from_slice(text.as_bytes())?;
                ServerFrame::DevicesChanged { user_id: name }
            }
            "group_changed" => {
                let Named { name } = serde_json::from_slice(text.as_bytes())?;
                ServerFrame::GroupChanged { group: name }
            }
            "stored" => {
                let Answer { id, receipt, .. } = serde_json::from_slice(text.as_bytes())?;
                let receipt = receipt.ok_or_else(|| Error::missing_field("receipt"))?;
                ServerFrame::Stored { id, receipt }
            }
            "refused" => {
                let Answer { id, error, .. } = serde_json::from_slice(text.as_bytes())?;
                let error = error.ok_or_else(|| Error::missing_field("error"))?;
                ServerFrame::Refused { id, error }
            }
            "error" => {
                // The fields of an error answer, so one parser serves both.
                let ErrorDetail { code, message, .. } = serde_json::from_slice(text.as_bytes())?;
                ServerFrame::Error { code, message }
            }
            other => return Err(serde_json::Error::custom(format!("unknown frame {other}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveredEnvelope {
    /// Per-server sequence number; acknowledge it with [`ClientFrame::Ack`].
    pub seq: i64,
    pub sender_user: String,
    pub sender_device: String,
    /// Unix milliseconds at which the server accepted it.
    pub accepted_at: i64,
    #[serde(with = "crate::b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_a_stable_json_shape() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"ack","seq":7}"#).unwrap();
        assert!(matches!(f, ClientFrame::Ack { seq: 7 }));
        let e = ServerFrame::Envelope(DeliveredEnvelope {
            seq: 1,
            sender_user: "u".into(),
            sender_device: "d".into(),
            accepted_at: 5,
            payload: vec![1, 2, 3],
        });
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"type":"envelope","seq":1,"sender_user":"u","sender_device":"d","accepted_at":5,"payload":"AQID"}"#
        );
        let back: ServerFrame = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, ServerFrame::Envelope(d) if d.payload == [1, 2, 3]));
    }

    #[test]
    fn two_pass_parsing_reads_what_the_derived_form_writes() {
        let frames = [
            ServerFrame::Ready {
                device_id: "d".into(),
            },
            ServerFrame::Envelope(DeliveredEnvelope {
                seq: 1,
                sender_user: "u".into(),
                sender_device: "d".into(),
                accepted_at: 5,
                payload: vec![1, 2, 3],
            }),
            ServerFrame::Delivered { seq: 9 },
            ServerFrame::LinkRequest(LinkRequest {
                id: "l".into(),
                commitment: vec![1; 32],
                status: "revealed".into(),
                expires_at: 3,
                running_public: Some(vec![2; 32]),
                new_public: Some(vec![3; 32]),
                sealed: None,
            }),
            ServerFrame::PrekeysLow { remaining: 4 },
            ServerFrame::DevicesChanged {
                user_id: "u".into(),
            },
            ServerFrame::GroupChanged {
                group: "support".into(),
            },
            ServerFrame::Stored {
                id: 2,
                receipt: SendReceipt {
                    stored: 2,
                    accepted_at: 1,
                    seqs: vec![4, 5],
                },
            },
            ServerFrame::Refused {
                id: 3,
                error: ErrorDetail {
                    code: "c".into(),
                    message: "m".into(),
                    position: None,
                    details: None,
                },
            },
            ServerFrame::Error {
                code: "c".into(),
                message: "m".into(),
            },
        ];
        for frame in frames {
            let json = serde_json::to_string(&frame).unwrap();
            let derived: ServerFrame = serde_json::from_str(&json).unwrap();
            let two_pass = ServerFrame::from_json(&json).unwrap();
            assert_eq!(format!("{derived:?}"), format!("{two_pass:?}"), "{json}");
        }
        assert!(ServerFrame::from_json(r#"{"type":"nope"}"#).is_err());
        assert!(ServerFrame::from_json(r#"{"type":"delivered"}"#).is_err());
        assert!(ServerFrame::from_json("[]").is_err());
        // The frames that share a parser take only their own shape from a relay.
        for forged in [
            r#"{"type":"stored","id":1,"error":{"code":"x","message":"y"}}"#,
            r#"{"type":"refused","id":1,"receipt":{"stored":1,"accepted_at":1,"seqs":[1]}}"#,
            r#"{"type":"prekeys_low","remaining":-1}"#,
            r#"{"type":"prekeys_low","remaining":4294967296}"#,
            r#"{"type":"ready"}"#,
        ] {
            assert!(ServerFrame::from_json(forged).is_err(), "{forged}");
        }
        let closing =
            ServerFrame::from_json(r#"{"type":"error","code":"c","message":"m","position":3}"#);
        assert!(
            matches!(closing, Ok(ServerFrame::Error { code, message }) if code == "c" && message == "m")
        );
    }

    #[test]
    fn expired_notices_round_trip_and_nothing_else_parses_as_one() {
        assert_eq!(
            parse_expired_notice(&expired_notice(&[7, -1])),
            Some(vec![7, -1])
        );
        let many: Vec<i64> = (0..600).collect();
        assert_eq!(
            parse_expired_notice(&expired_notice(&many)).unwrap().len(),
            MAX_SEQS_PER_EXPIRED_NOTICE
        );
        assert_eq!(parse_expired_notice(EXPIRED_NOTICE_PREFIX), None);
        assert_eq!(parse_expired_notice(&retry_request(1)), None);
        let mut ragged = expired_notice(&[1]);
        ragged.push(0);
        assert_eq!(parse_expired_notice(&ragged), None);
        let mut too_many = EXPIRED_NOTICE_PREFIX.to_vec();
        too_many.extend(std::iter::repeat_n(
            0u8,
            8 * (MAX_SEQS_PER_EXPIRED_NOTICE + 1),
        ));
        assert_eq!(parse_expired_notice(&too_many), None);
        assert!(expired_notice(&[1]).starts_with(SERVER_MADE_PREFIX));
        assert!(retry_request(1).starts_with(SERVER_MADE_PREFIX));
    }

    #[test]
    fn retry_requests_round_trip_and_nothing_else_parses_as_one() {
        assert_eq!(parse_retry_request(&retry_request(42)), Some(42));
        assert_eq!(parse_retry_request(&retry_request(-1)), Some(-1));
        assert_eq!(parse_retry_request(RETRY_REQUEST_PREFIX), None);
        assert_eq!(parse_retry_request(&[1, 2, 3]), None);
        let mut long = retry_request(1);
        long.push(0);
        assert_eq!(parse_retry_request(&long), None);
    }

    #[test]
    fn bad_base64_is_refused() {
        let r: Result<RegisterDevice, _> = serde_json::from_str(r#"{"public_key":"***"}"#);
        assert!(r.is_err());
    }
}
