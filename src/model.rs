//! What the client knows of threads and messages. Threads are local to the members' devices:
//! a thread exists on a device from its first message, identified by the ID in the body.

use serde::{Deserialize, Serialize};
use sotto_core::protocol::User;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    /// Canonical distribution expression, e.g. `@alice + @bob`.
    pub distribution: String,
    pub members: Vec<User>,
    pub messages: Vec<Message>,
    pub unread: u32,
}

/// Where a message stands, from this device's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Typed here, not yet accepted by the server (offline): sent when the connection returns.
    Pending,
    /// Accepted by the server for every recipient device.
    Sent,
    /// Came from another device.
    Received,
    /// Could never be sent (e.g. no recipient has a device); kept so the text is not lost.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

impl Thread {
    /// A title from the other members' names: "Bob Brown", "Bob Brown, Carol Chen".
    pub fn title(&self, own_id: &str) -> String {
        let mut others: Vec<&str> = self
            .members
            .iter()
            .filter(|u| u.id != own_id)
            .map(display_name)
            .collect();
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

pub fn display_name(u: &User) -> &str {
    u.name.as_deref().unwrap_or(&u.tag)
}
