//! What a message is and how an envelope payload is framed. The plaintext [`MessageBody`]
//! travels either inside a pairwise Double Ratchet message ([`crate::ratchet`], for 1:1
//! threads and to hand out sender keys) or a sender-key message ([`crate::sender_key`], for
//! groups); [`crate::account`] decides which and does the cryptography.
//!
//! ```text
//! payload = version (u16 BE = 2) || part [|| part]
//! part    = kind (u8) || length (u32 BE) || bytes
//! kind 1  = prekey message:   X3DH header (105 bytes) || ratchet message
//! kind 2  = pairwise message: ratchet message (header || ciphertext)
//! kind 3  = group message:    sender-key message
//! ```
//!
//! A group envelope may carry a pairwise part first (the sender key that the group part
//! needs) — at most two parts. Each pairwise message binds the route that the server reports
//! (`lp(sender_user) || lp(sender_device) || lp(recipient_device)`, `lp` = u16 length prefix),
//! so a server that re-labels or re-routes an envelope makes it fail to open.

use crate::kdf::push_lp;
use crate::sender_key::SenderKeyDistribution;
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// The envelope format of this protocol version (version 1 sealed bodies with HPKE alone).
pub const ENVELOPE_VERSION: u16 = 2;

/// The largest message text accepted, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

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
    /// The sender replaces the text (and HTML) of their message `target` with this body's.
    Edit,
    /// The sender takes back their message `target` on every member's device.
    Delete,
    /// The sender reacts to message `target` with the emoji in `text` (`""` takes it back).
    React,
    /// The sender is typing in the thread (`text` non-empty) or stopped (`""`). Sent only
    /// live (`SendRequest::live`): never stored, so a receiver takes it from nowhere else.
    Typing,
    /// A kind a later version made: read, and ignored, so that new kinds never make older
    /// clients ask for the envelope again or report it broken.
    #[serde(other)]
    Unknown,
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
    /// The thread's distribution: the canonical list of its users (`@alice + @bob`), or, for
    /// a thread made with a group, that expression in normal form (`@support + @carol`; see
    /// `membership::distribution`).
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
    /// For `Edit`, `Delete` and `React`: the message changed. For a `Message`: the one it
    /// replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Who an envelope claims to come from and go to, as the server reports it.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub sender_user: &'a str,
    pub sender_device: &'a str,
    pub recipient_device: &'a str,
}

impl Route<'_> {
    /// The route as bound into a pairwise message's associated data.
    pub fn to_aad(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [self.sender_user, self.sender_device, self.recipient_device] {
            push_lp(&mut out, part.as_bytes());
        }
        out
    }
}

/// What travels inside a pairwise (Double Ratchet) message.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pairwise {
    /// A message body (1:1 threads and housekeeping that has no group key yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<MessageBody>,
    /// Sender keys the recipient needs to read the sender's group messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_keys: Vec<SenderKeyDistribution>,
}

/// The kinds of part an envelope payload is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// A Double Ratchet message preceded by the X3DH header that starts the session.
    PreKey = 1,
    /// A Double Ratchet message on an established session.
    Pairwise = 2,
    /// A sender-key message: the same bytes go to every member device.
    Group = 3,
}

/// Builds an envelope payload from its parts.
pub fn encode_payload(parts: &[(PartKind, &[u8])]) -> Vec<u8> {
    let mut out = ENVELOPE_VERSION.to_be_bytes().to_vec();
    for (kind, bytes) in parts {
        out.push(*kind as u8);
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Splits an envelope payload into its parts.
pub fn decode_payload(payload: &[u8]) -> Result<Vec<(PartKind, &[u8])>, CoreError> {
    let bad = |detail: &str| CoreError::Malformed {
        what: "envelope",
        detail: detail.into(),
    };
    if payload.len() < 2 {
        return Err(bad("too short"));
    }
    let version = u16::from_be_bytes([payload[0], payload[1]]);
    if version != ENVELOPE_VERSION {
        return Err(CoreError::UnsupportedVersion(version));
    }
    let mut rest = &payload[2..];
    let mut parts = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 5 || parts.len() >= 2 {
            return Err(bad("bad part framing"));
        }
        let kind = match rest[0] {
            1 => PartKind::PreKey,
            2 => PartKind::Pairwise,
            3 => PartKind::Group,
            _ => return Err(bad("unknown part")),
        };
        let len = u32::from_be_bytes(rest[1..5].try_into().expect("4")) as usize;
        let bytes = rest
            .get(5..5 + len)
            .ok_or_else(|| bad("part overruns the envelope"))?;
        parts.push((kind, bytes));
        rest = &rest[5 + len..];
    }
    if parts.is_empty() {
        return Err(bad("no parts"));
    }
    Ok(parts)
}

/// Refuses a body too long to send.
pub fn check_body(body: &MessageBody) -> Result<(), CoreError> {
    if body.text.len() > MAX_TEXT_BYTES
        || body.html.as_ref().is_some_and(|h| h.len() > MAX_TEXT_BYTES)
    {
        return Err(CoreError::Malformed {
            what: "message",
            detail: format!("text or html longer than {MAX_TEXT_BYTES} bytes"),
        });
    }
    Ok(())
}

/// Serializes a body, refusing one too long to send.
pub fn body_bytes(body: &MessageBody) -> Result<Vec<u8>, CoreError> {
    check_body(body)?;
    serde_json::to_vec(body).map_err(|e| CoreError::Malformed {
        what: "message",
        detail: e.to_string(),
    })
}

/// Refuses a body whose sender is not the route's (the relay relabelled it, or a sender
/// wrote someone else's name into it), or whose thread ID (or target) is not one a client
/// makes.
pub fn check_sender(
    body: &MessageBody,
    sender_user: &str,
    sender_device: &str,
) -> Result<(), CoreError> {
    if body.sender_user != sender_user || body.sender_device != sender_device {
        return Err(CoreError::Malformed {
            what: "message",
            detail: "sender does not match the envelope".into(),
        });
    }
    if !valid_thread_id(&body.thread_id) {
        return Err(CoreError::Malformed {
            what: "message",
            detail: "thread ID is not 1 to 64 letters, digits, - or _".into(),
        });
    }
    let changes = matches!(body.kind, Kind::Edit | Kind::Delete | Kind::React);
    let target_ok = match &body.target {
        Some(t) => valid_thread_id(t),
        None => !changes,
    };
    if !target_ok {
        return Err(CoreError::Malformed {
            what: "message",
            detail: "the message it names is not a message ID".into(),
        });
    }
    Ok(())
}

/// Thread IDs name a thread's records in the browser's storage (`…|thread`, and its pages
/// `…|thread|000000`): one holding `|` could be made to name another thread's page. The
/// message a body names in `target` is held to the same rule.
pub fn valid_thread_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a decrypted body and checks it against the route the server reported.
pub fn parse_body(
    bytes: &[u8],
    sender_user: &str,
    sender_device: &str,
) -> Result<MessageBody, CoreError> {
    let body: MessageBody = serde_json::from_slice(bytes).map_err(|e| CoreError::Malformed {
        what: "message",
        detail: e.to_string(),
    })?;
    check_sender(&body, sender_user, sender_device)?;
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
    use crate::protocol::PROTOCOL_VERSION;

    #[test]
    fn a_thread_id_that_could_name_another_threads_storage_is_refused() {
        let minimal = |thread: &str| {
            format!(
                r#"{{"v":1,"message_id":"m","thread_id":"{thread}","distribution":"@a","sender_user":"u","sender_device":"d","sent_at":1,"text":"hi"}}"#
            )
        };
        assert!(parse_body(minimal("0123abcdef_-").as_bytes(), "u", "d").is_ok());
        for bad in ["t|000000", "", "a b", "é", &"x".repeat(65)] {
            let e = parse_body(minimal(bad).as_bytes(), "u", "d").unwrap_err();
            assert!(e.to_string().contains("thread ID"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_change_must_name_the_message_it_changes() {
        let with = |kind: &str, target: &str| {
            format!(
                r#"{{"v":1,"message_id":"m","thread_id":"t","distribution":"@a","sender_user":"u","sender_device":"d","sent_at":1,"text":"x","kind":"{kind}"{target}}}"#
            )
        };
        for kind in ["edit", "delete", "react"] {
            assert!(parse_body(with(kind, "").as_bytes(), "u", "d").is_err());
            assert!(parse_body(with(kind, r#","target":"m|0""#).as_bytes(), "u", "d").is_err());
            let ok = parse_body(with(kind, r#","target":"m0""#).as_bytes(), "u", "d").unwrap();
            assert_eq!(ok.target.as_deref(), Some("m0"));
        }
        // A reply names its message the same way; a message need not reply.
        assert!(parse_body(with("message", "").as_bytes(), "u", "d").is_ok());
        let later = parse_body(with("poll", "").as_bytes(), "u", "d").unwrap();
        assert_eq!(later.kind, Kind::Unknown);
        assert!(parse_body(with("message", r#","target":"""#).as_bytes(), "u", "d").is_err());
    }

    pub(crate) fn body() -> MessageBody {
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

    #[test]
    fn payloads_frame_and_unframe() {
        let p = encode_payload(&[(PartKind::PreKey, &b"abc"[..]), (PartKind::Group, &b""[..])]);
        assert_eq!(
            decode_payload(&p).unwrap(),
            vec![(PartKind::PreKey, &b"abc"[..]), (PartKind::Group, &b""[..])]
        );
        assert!(decode_payload(&[0, 2]).is_err());
        assert_eq!(
            decode_payload(&[0, 1, 2, 0, 0, 0, 0]),
            Err(CoreError::UnsupportedVersion(1))
        );
        let mut truncated = p.clone();
        truncated.truncate(6);
        assert!(decode_payload(&truncated).is_err());
        let three = encode_payload(&[(PartKind::Pairwise, &b"a"[..]); 3]);
        assert!(decode_payload(&three).is_err());
    }

    #[test]
    fn bodies_check_their_sender_and_old_bodies_still_parse() {
        let mut b = body();
        b.kind = Kind::Update;
        b.attributes.insert("title".into(), "Plans".into());
        b.expiration = Some(30);
        let bytes = body_bytes(&b).unwrap();
        assert_eq!(parse_body(&bytes, "ua", "da").unwrap(), b);
        assert!(parse_body(&bytes, "uc", "da").is_err());
        assert!(parse_body(&bytes, "ua", "dx").is_err());
        let minimal = r#"{"v":1,"message_id":"m","thread_id":"t","distribution":"@a","sender_user":"u","sender_device":"d","sent_at":1,"text":"hi"}"#;
        let parsed: MessageBody = serde_json::from_str(minimal).unwrap();
        assert_eq!((parsed.kind, parsed.expiration), (Kind::Message, None));
        let mut long = body();
        long.text = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(body_bytes(&long).is_err());
    }
}
