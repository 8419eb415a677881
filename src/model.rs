//! What the client knows of threads and messages. Threads are local to the members' devices:
//! a thread exists on a device from its first message, identified by the ID in the body.

use serde::Serialize;
use sotto_core::protocol::User;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    /// Canonical distribution expression, e.g. `@alice + @bob`.
    pub distribution: String,
    pub members: Vec<User>,
    pub messages: Vec<Message>,
    pub unread: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub thread_id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub sent_at: i64,
    pub text: String,
    pub outgoing: bool,
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

    pub fn member(&self, id: &str) -> Option<&User> {
        self.members.iter().find(|u| u.id == id)
    }
}

pub fn display_name(u: &User) -> &str {
    u.name.as_deref().unwrap_or(&u.tag)
}
