//! How a message travels: the plaintext [`MessageBody`] is serialized, then sealed once per
//! recipient device with HPKE ([`crate::hpke`]) into an envelope payload:
//!
//! ```text
//! payload = version (u16, big-endian) || enc (32 bytes) || AES-256-GCM ciphertext
//! info    = "sotto/v1 message"
//! aad     = "sotto/v1" || lp(sender_user) || lp(sender_device) || lp(recipient_device)
//! ```
//! where `lp(x)` is `x` prefixed by its length as a u16. The associated data binds the
//! envelope to the sender and recipient that the server reports, so a server that re-labels
//! or re-routes an envelope makes it fail to open. (HPKE base mode does not prove who sealed
//! it; the ratcheting sessions of a later protocol version add that.) This module is the seam
//! where those sessions plug in.

use crate::hpke::{self, ENC_LEN};
use crate::keys::DeviceKeys;
use crate::protocol::PROTOCOL_VERSION;
use crate::CoreError;
use serde::{Deserialize, Serialize};
use x25519_dalek::PublicKey;

/// The largest message text accepted, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

const INFO: &[u8] = b"sotto/v1 message";

/// What a body is for. Everything but `Message` is thread housekeeping that every member's
/// devices apply and nobody sees as a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Message,
    /// The thread's attributes, expiration or distribution changed (sent to the old and the
    /// new members alike, so the removed learn it too).
    Update,
    /// The sender has left the thread.
    Leave,
    /// The sender has read everything up to `read_until`.
    Readmark,
}

impl Kind {
    fn is_message(&self) -> bool {
        *self == Kind::Message
    }
}

/// The plaintext of one message: only the sender's and the recipients' devices ever see it.
/// Every body carries the thread's current distribution, attributes and expiration, so a
/// member who missed an update catches up with the next message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBody {
    pub v: u16,
    pub message_id: String,
    pub thread_id: String,
    /// The thread's distribution, as a canonical expression (`@alice + @bob`).
    pub distribution: String,
    pub sender_user: String,
    pub sender_device: String,
    /// Unix milliseconds, by the sender's clock.
    pub sent_at: i64,
    #[serde(default)]
    pub text: String,
    /// An HTML rendering the sender's page supplied. Receivers keep it for their page to use
    /// as it sees fit; Sotto's own UI only ever shows `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Files sent with the message: where each blob is and the key that opens it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::attachment::AttachmentRef>,
    /// Attributes of this one message, for the page (e.g. `{priority: "high"}`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attrs: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Kind::is_message")]
    pub kind: Kind,
    /// Thread attributes shared with every member (`title` and any others).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Disappearing messages: seconds after `sent_at` at which every device deletes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u32>,
    /// Version of `distribution`, `attributes` and `expiration`: the `sent_at` of the update
    /// that set them. A device adopts them only when newer than what it has, so a message
    /// written before an update cannot undo it.
    #[serde(default)]
    pub meta_at: i64,
    /// For `Readmark`: Unix milliseconds up to which the sender has read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_until: Option<i64>,
}

/// Who an envelope claims to come from and go to, as the server reports it.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub sender_user: &'a str,
    pub sender_device: &'a str,
    pub recipient_device: &'a str,
}

fn aad(route: &Route<'_>) -> Vec<u8> {
    let mut out = b"sotto/v1".to_vec();
    for part in [
        route.sender_user,
        route.sender_device,
        route.recipient_device,
    ] {
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Seals `body` for one recipient device.
pub fn seal(
    body: &MessageBody,
    recipient: &PublicKey,
    route: &Route<'_>,
) -> Result<Vec<u8>, CoreError> {
    if body.text.len() > MAX_TEXT_BYTES
        || body.html.as_ref().is_some_and(|h| h.len() > MAX_TEXT_BYTES)
    {
        return Err(CoreError::Malformed {
            what: "message",
            detail: format!("text or html longer than {MAX_TEXT_BYTES} bytes"),
        });
    }
    let plaintext = serde_json::to_vec(body).map_err(|e| CoreError::Malformed {
        what: "message",
        detail: e.to_string(),
    })?;
    let (enc, ct) = hpke::seal(recipient, INFO, &aad(route), &plaintext)?;
    let mut payload = Vec::with_capacity(2 + ENC_LEN + ct.len());
    payload.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    payload.extend_from_slice(&enc);
    payload.extend_from_slice(&ct);
    Ok(payload)
}

/// Opens an envelope payload addressed to `own` and checks that the body agrees with the
/// route the server reported.
pub fn open(payload: &[u8], own: &DeviceKeys, route: &Route<'_>) -> Result<MessageBody, CoreError> {
    if payload.len() < 2 + ENC_LEN {
        return Err(CoreError::Malformed {
            what: "envelope",
            detail: "too short".into(),
        });
    }
    let version = u16::from_be_bytes([payload[0], payload[1]]);
    if version != PROTOCOL_VERSION {
        return Err(CoreError::UnsupportedVersion(version));
    }
    let (enc, ct) = payload[2..].split_at(ENC_LEN);
    let plaintext = hpke::open(own.secret(), enc, INFO, &aad(route), ct)?;
    let body: MessageBody =
        serde_json::from_slice(&plaintext).map_err(|e| CoreError::Malformed {
            what: "message",
            detail: e.to_string(),
        })?;
    if body.sender_user != route.sender_user || body.sender_device != route.sender_device {
        return Err(CoreError::Malformed {
            what: "message",
            detail: "sender does not match the envelope".into(),
        });
    }
    if body.text.len() > MAX_TEXT_BYTES {
        return Err(CoreError::Malformed {
            what: "message",
            detail: "text too long".into(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> MessageBody {
        MessageBody {
            v: PROTOCOL_VERSION,
            message_id: "m1".into(),
            thread_id: "t1".into(),
            distribution: "@alice + @bob".into(),
            sender_user: "ua".into(),
            sender_device: "da".into(),
            sent_at: 1,
            text: "hello <b>bob</b>".into(),
            ..Default::default()
        }
    }

    const ROUTE: Route<'static> = Route {
        sender_user: "ua",
        sender_device: "da",
        recipient_device: "db",
    };

    #[test]
    fn a_message_opens_only_for_its_recipient_and_route() {
        let bob = DeviceKeys::generate().unwrap();
        let eve = DeviceKeys::generate().unwrap();
        let pk = PublicKey::from(bob.public_key());
        let payload = seal(&body(), &pk, &ROUTE).unwrap();
        assert_eq!(open(&payload, &bob, &ROUTE).unwrap(), body());
        assert_eq!(open(&payload, &eve, &ROUTE), Err(CoreError::Decrypt));
        let relabelled = Route {
            sender_user: "uc",
            ..ROUTE
        };
        assert_eq!(open(&payload, &bob, &relabelled), Err(CoreError::Decrypt));
        let rerouted = Route {
            recipient_device: "dx",
            ..ROUTE
        };
        assert_eq!(open(&payload, &bob, &rerouted), Err(CoreError::Decrypt));
        let plain = String::from_utf8_lossy(&payload);
        assert!(!plain.contains("hello"));
    }

    #[test]
    fn housekeeping_fields_travel_and_old_bodies_still_parse() {
        let bob = DeviceKeys::generate().unwrap();
        let mut b = body();
        b.kind = Kind::Update;
        b.attributes.insert("title".into(), "Plans".into());
        b.expiration = Some(30);
        let payload = seal(&b, &PublicKey::from(bob.public_key()), &ROUTE).unwrap();
        assert_eq!(open(&payload, &bob, &ROUTE).unwrap(), b);
        let minimal = r#"{"v":1,"message_id":"m","thread_id":"t","distribution":"@a","sender_user":"u","sender_device":"d","sent_at":1,"text":"hi"}"#;
        let parsed: MessageBody = serde_json::from_str(minimal).unwrap();
        assert_eq!((parsed.kind, parsed.expiration), (Kind::Message, None));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let bob = DeviceKeys::generate().unwrap();
        assert!(open(&[0, 1, 2], &bob, &ROUTE).is_err());
        let mut p = seal(&body(), &PublicKey::from(bob.public_key()), &ROUTE).unwrap();
        p[1] = 9;
        assert_eq!(
            open(&p, &bob, &ROUTE),
            Err(CoreError::UnsupportedVersion(9))
        );
        let mut long = body();
        long.text = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(seal(&long, &PublicKey::from(bob.public_key()), &ROUTE).is_err());
    }
}
