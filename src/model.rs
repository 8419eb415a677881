//! What the client knows of threads and messages. Threads are local to the members' devices:
//! a thread exists on a device from its first message, identified by the ID in the body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sotto_core::amend::{self, Change, Reaction};
use sotto_core::protocol::User;
use sotto_core::sealing::MessageBody;
use sotto_core::vec_map::VecMap;
use sotto_core::CoreError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    /// The distribution: the canonical list of users (`@alice + @bob`), or an expression
    /// naming groups (`@support + @alice`) that the thread follows as they change.
    pub distribution: String,
    pub members: Vec<User>,
    /// The groups `distribution` names, whose members the thread follows (see
    /// `sotto_core::membership::distribution`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub messages: Vec<Message>,
    pub unread: u32,
    /// Shared with every member: `title` and any others the page sets.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Disappearing messages: seconds after sending at which every device deletes them.
    #[serde(default)]
    pub expiration: Option<u32>,
    /// Version of distribution, attributes and expiration (see `MessageBody::meta_at`).
    #[serde(default)]
    pub meta_at: i64,
    /// Hidden from the list until restored (this device only).
    #[serde(default)]
    pub archived: bool,
    /// This user is no longer a member (left, or was removed).
    #[serde(default)]
    pub left: bool,
    /// Per member: read up to (Unix milliseconds).
    #[serde(default)]
    pub read_marks: VecMap<String, i64>,
    /// This device's envelopes of this thread that other users' devices have not yet
    /// received, oldest first. Kept with the history, because the answers (delivered, a
    /// retry request, an expiry notice) may come after a reload or weeks later. Never
    /// shown to the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<Awaiting>,
    /// Edits, deletions and reactions that came before the message they change (its first
    /// envelope failed and was sent again): applied when it arrives, so a deletion is
    /// never lost to the order of arrival. At most [`MAX_HELD_CHANGES`], newest kept; each
    /// is the body's JSON (parsers the wasm has already, where a list of bodies would
    /// compile new ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// Changes held per thread for messages not here yet.
pub const MAX_HELD_CHANGES: usize = 64;
/// The largest change held (its JSON).
const MAX_HELD_BYTES: usize = 4 * 1024;

/// One envelope of a sent message, until its device has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Awaiting {
    /// The server's sequence number of the envelope.
    pub seq: i64,
    pub message_id: String,
    pub user_id: String,
    pub device_id: String,
    /// It is itself the answer to a retry request: a message is sent again once per
    /// device, so a retry request for it is not answered (also after a reload).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resend: bool,
}

/// The most envelopes a thread keeps waiting for (the oldest are forgotten first).
pub const MAX_AWAITING_PER_THREAD: usize = 5_000;

/// Where a message stands, from this device's point of view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Typed here, not yet accepted by the server (offline): sent when the connection returns.
    Pending,
    /// Accepted by the server for every recipient device.
    Sent,
    /// At least one other member's device has it.
    Delivered,
    /// Came from another device.
    #[default]
    Received,
    /// Could never be sent (e.g. no recipient has a device); kept so the text is not lost.
    Failed,
    /// Accepted by the server, but no other member's device took it before the server's
    /// maximum age (its expiry notice said so).
    Expired,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub thread_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub sent_at: i64,
    pub text: String,
    pub outgoing: bool,
    pub status: Status,
    /// The sender page's HTML rendering, kept for the page; Sotto's UI shows only `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Files sent with it (the key of each travels here, sealed like the text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<sotto_core::attachment::AttachmentRef>,
    /// Attributes of this message, for the page.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attrs: Map<String, Value>,
    /// When every device deletes it (disappearing messages), Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The message it replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The members it mentions by tag (user IDs), and whether this user is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mentioned: bool,
    /// When its sender last edited it (`text` is the newest; older texts are not kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Its sender deleted it for everyone: its text, HTML, attributes and attachments (with
    /// their keys) are gone from this device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// One per member at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

impl Message {
    /// Sets whom `text` mentions among `members`, and whether `own_id` is one of them.
    pub fn set_mentions(&mut self, members: &[User], own_id: &str) {
        self.mentions = amend::mentions(
            &self.text,
            members.iter().map(|u| (u.id.as_str(), u.tag.as_str())),
        );
        self.mentioned = self.mentions.iter().any(|m| m == own_id);
    }

    /// Applies a member's edit, deletion or reaction, as `sotto_core::amend` allows it;
    /// returns whether the message changed. `members` are the thread's, for mentions.
    pub fn amend(
        &mut self,
        body: &MessageBody,
        members: &[User],
        own_id: &str,
    ) -> Result<bool, CoreError> {
        let target = amend::Target {
            sender_user: &self.sender_id,
            edited_at: self.edited_at,
            deleted: self.deleted,
        };
        match amend::check(body, target)? {
            Change::Edit => {
                self.text = body.text.clone();
                self.html = body.html.clone();
                self.edited_at = Some(body.sent_at);
                self.set_mentions(members, own_id);
            }
            Change::Delete => {
                self.deleted = true;
                self.text.clear();
                self.html = None;
                self.attachments.clear();
                self.attrs.clear();
                self.reactions.clear();
                self.mentions.clear();
                self.mentioned = false;
            }
            Change::React(emoji) => {
                return Ok(amend::react(
                    &mut self.reactions,
                    &body.sender_user,
                    emoji,
                    body.sent_at,
                ))
            }
        }
        Ok(true)
    }
}

impl Thread {
    /// The envelope `seq` that this device sent, while it waits.
    pub fn awaiting(&self, seq: i64) -> Option<&Awaiting> {
        self.awaiting.iter().find(|a| a.seq == seq)
    }

    /// Stops waiting for envelope `seq`.
    pub fn take_awaiting(&mut self, seq: i64) -> Option<Awaiting> {
        let at = self.awaiting.iter().position(|a| a.seq == seq)?;
        Some(self.awaiting.remove(at))
    }

    /// A thread for the users `resolved` from `expr`, with no title or attributes yet.
    pub fn resolved(id: String, expr: &str, resolved: sotto_core::protocol::Resolved) -> Thread {
        let (distribution, groups) = sotto_core::membership::distribution(expr, &resolved);
        Thread {
            groups,
            ..Thread::new(id, distribution, resolved.users)
        }
    }

    /// Adopts what a member's change `expr` resolved to as the distribution and members:
    /// the members it had, people named by their own tag, and the users of groups the
    /// change newly names (`chosen`) — never anyone else the answer holds (see
    /// `membership::admissible`). Returns whether someone is no longer a member.
    pub fn set_distribution(
        &mut self,
        expr: &str,
        mut resolved: sotto_core::protocol::Resolved,
        chosen: &[String],
    ) -> bool {
        let (_, named_groups) = sotto_core::membership::distribution(expr, &resolved);
        let groups: Vec<String> = self.groups.iter().chain(&named_groups).cloned().collect();
        resolved.users =
            sotto_core::membership::admissible(expr, &groups, &self.members, chosen, &resolved);
        let removed = self
            .members
            .iter()
            .any(|m| !resolved.users.iter().any(|u| u.id == m.id));
        let (distribution, groups) = sotto_core::membership::distribution(expr, &resolved);
        self.distribution = distribution;
        self.groups = groups;
        self.members = resolved.users;
        removed
    }

    /// Takes `user` out: the members, and the distribution (which, following groups, must
    /// now leave them out even while their group keeps them).
    pub fn remove_member(&mut self, user: &str) {
        let Some(tag) = self.member(user).map(|u| u.tag.clone()) else {
            return;
        };
        self.members.retain(|m| m.id != user);
        let canonical = sotto_core::expr::canonical(self.members.iter().map(|m| m.tag.as_str()));
        if self.groups.is_empty() {
            self.distribution = canonical;
            return;
        }
        let expr = format!("({}) - @{tag}", self.distribution);
        let printed = sotto_core::expr::parse(&expr).map(|e| e.to_string());
        match printed {
            Ok(p) if p.chars().count() <= sotto_core::expr::MAX_LEN => self.distribution = p,
            // Too long to keep: the thread keeps its members as a list from now on.
            _ => {
                self.distribution = canonical;
                self.groups.clear();
            }
        }
    }

    /// A thread made with no title or attributes yet.
    pub fn new(id: String, distribution: String, members: Vec<User>) -> Thread {
        Thread {
            id,
            distribution,
            members,
            groups: Vec::new(),
            messages: Vec::new(),
            unread: 0,
            attributes: Map::new(),
            expiration: None,
            meta_at: 0,
            archived: false,
            left: false,
            read_marks: VecMap::default(),
            awaiting: Vec::new(),
            held: Vec::new(),
        }
    }

    /// The `title` attribute, or else the other members' names: "Bob Brown, Carol Chen".
    pub fn title(&self, own_id: &str) -> String {
        if let Some(t) = self
            .attributes
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            return t.to_owned();
        }
        let mut others: Vec<String> = self
            .members
            .iter()
            .filter(|u| u.id != own_id)
            .map(display_name)
            .collect();
        if !self.groups.is_empty() {
            // Named by its groups ("Support"), after the people named besides, if any
            // ("Carol · Support"), so an agent tells one customer's thread from another's.
            let groups: Vec<String> = self.groups.iter().map(|g| group_title(g)).collect();
            let named = sotto_core::expr::parse(&self.distribution)
                .map(|e| e.tags().into_iter().map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default();
            let mut direct: Vec<String> = self
                .members
                .iter()
                .filter(|u| {
                    u.id != own_id && named.contains(&u.tag) && !self.groups.contains(&u.tag)
                })
                .map(display_name)
                .collect();
            if direct.is_empty() {
                return groups.join(", ");
            }
            direct.sort_unstable();
            return format!("{} · {}", direct.join(", "), groups.join(", "));
        }
        others.sort_unstable();
        if others.is_empty() {
            "Just you".into()
        } else {
            others.join(", ")
        }
    }

    /// When something last happened here (its newest message), for ordering the list.
    pub fn last_activity(&self) -> i64 {
        self.messages.last().map(|m| m.sent_at).unwrap_or(0)
    }

    pub fn member(&self, id: &str) -> Option<&User> {
        self.members.iter().find(|u| u.id == id)
    }
}

/// A group's tag as a title: `@front_desk` is "Front desk".
fn group_title(tag: &str) -> String {
    // Tags are ASCII: no Unicode case tables needed (they would cost the wasm ~20 KB).
    let mut words = tag.replace(['_', '.'], " ");
    if let Some(first) = words.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    words
}

/// How a user is named on screen. A visitor chose their own name, so it comes after the
/// tag the server gave them: "Bob (IT)" typed by an anonymous visitor must not pass for
/// staff, two visitors who both say "Vera" are told apart ("visitor.k3x9qa (Vera)"), and
/// no name can push the tag out of sight or pose as another visitor's tag.
pub fn display_name(u: &User) -> String {
    match (&u.name, u.ephemeral) {
        (Some(name), true) => format!("{} ({name})", u.tag),
        (Some(name), false) => name.clone(),
        (None, _) => u.tag.clone(),
    }
}

/// Applies the changes in `held` (bodies' JSON) that name `message`, in the order they
/// came, and forgets them.
pub fn apply_held(held: &mut Vec<String>, message: &mut Message, members: &[User], own: &str) {
    held.retain(|json| {
        let Ok(b) = serde_json::from_slice::<MessageBody>(json.as_bytes()) else {
            return false;
        };
        if b.target.as_deref() != Some(message.id.as_str()) {
            return true;
        }
        // Only a change made in this message's thread, by someone who is a member of it.
        if b.thread_id == message.thread_id && members.iter().any(|u| u.id == b.sender_user) {
            let _ = message.amend(&b, members, own);
        }
        false
    });
}

/// Holds a change for a message that is not here yet (see `Thread::held`), the oldest
/// dropped past [`MAX_HELD_CHANGES`]. A long edit is not held: what is held is rewritten
/// with its thread at every save (a deletion or a reaction is small).
pub fn hold(held: &mut Vec<String>, body: &MessageBody) {
    if let Ok(json) = sotto_core::sealing::body_bytes(body) {
        if json.len() <= MAX_HELD_BYTES {
            held.push(String::from_utf8(json).unwrap_or_default());
        }
    }
    let over = held.len().saturating_sub(MAX_HELD_CHANGES);
    held.drain(..over);
}
