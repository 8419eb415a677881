//! Typing indicators. A notice is a `typing` body sealed like any other (so the server
//! never learns who types where) and sent live: the server hands it to the members'
//! devices connected now and stores it nowhere (`SendRequest::live`). A start goes at most
//! every few seconds while the user types; receivers show it for a few seconds more, until
//! a stop, or until that person's message arrives.

use super::Inner;
use crate::error::ClientResult;
use crate::model::display_name;
use crate::util::{now_millis, random_id, set_timeout};
use sotto_core::protocol::PROTOCOL_VERSION;
use sotto_core::sealing::{Kind, MessageBody};
use std::rc::Rc;

/// A start is sent again at most this often while the user keeps typing.
const SEND_EVERY_MS: i64 = 3_000;
/// No start follows a stop sooner (a draft emptied and filled again, or calls from the
/// page, cannot send a notice per keystroke: each moves the ratchets and saves the
/// account). With at most one stop per start, that is two notices a second at most.
const AT_MOST_EVERY_MS: i64 = 1_000;
/// How long a start is shown without a newer one.
const SHOWN_MS: i64 = 6_000;

/// Someone typing in a thread now: (thread ID, user ID, shown until).
pub(super) type Typist = (String, String, i64);

impl Inner {
    /// Tells the other members of `thread_id` that this user is typing (`typing`) or has
    /// stopped. A start within [`SEND_EVERY_MS`] of the last one, a stop with no start
    /// before it, and anything while the socket is down are dropped: a late typing notice
    /// is worse than none.
    pub(super) async fn send_typing(
        self: &Rc<Self>,
        thread_id: &str,
        typing: bool,
    ) -> ClientResult<()> {
        if !self.options.typing {
            return Ok(());
        }
        if let Some(done) = self
            .forwarded("threadTyping", &[thread_id.into(), typing.into()])
            .await
        {
            return done.map(drop);
        }
        let (_, own) = self.session()?;
        let now = now_millis();
        let members = {
            let mut state = self.state.borrow_mut();
            let t = state.thread_mut(thread_id)?;
            if t.left {
                return Ok(());
            }
            let members = t.members.clone();
            let last = state
                .typing_sent
                .as_ref()
                .filter(|(t, _)| t == thread_id)
                .map(|(_, at)| *at);
            match (typing, last) {
                (true, Some(at)) if now - at < SEND_EVERY_MS => return Ok(()),
                (false, None) => return Ok(()),
                // A start too soon after a stop is dropped (the next keystroke says it
                // again); a stop always goes, and follows at most one start.
                (true, _) if now - state.typing_stopped < AT_MOST_EVERY_MS => return Ok(()),
                _ if !state.socket_ready || members.len() < 2 => return Ok(()),
                _ => {}
            }
            state.typing_sent = typing.then(|| (thread_id.to_owned(), now));
            if !typing {
                state.typing_stopped = now;
            }
            members
        };
        let body = MessageBody {
            v: PROTOCOL_VERSION,
            message_id: random_id()?,
            thread_id: thread_id.to_owned(),
            sender_user: own.id,
            sender_device: self.device_id()?,
            sent_at: now,
            text: if typing { "1" } else { "" }.into(),
            kind: Kind::Typing,
            ..Default::default()
        };
        // Sealed and sent as a message is (a device with no session yet gets one, which the
        // typist's message then uses), but live.
        self.deliver(&body, &members).await
    }

    /// `user_id` is typing in `thread_id` (`typing`), or stopped: shown, told to the page
    /// (`typing` event) and, by the tab that holds the account, to its views.
    pub(super) fn on_typing(self: &Rc<Self>, thread_id: &str, user_id: &str, typing: bool) {
        if !self.options.typing {
            return;
        }
        let until = now_millis() + SHOWN_MS;
        let name = {
            let mut state = self.state.borrow_mut();
            let Some(name) = state
                .threads
                .iter()
                .find(|t| t.id == thread_id)
                .and_then(|t| t.member(user_id))
                .map(display_name)
            else {
                return;
            };
            let before = state.typing.len();
            state
                .typing
                .retain(|(t, u, _)| !(t == thread_id && u == user_id));
            if typing {
                state
                    .typing
                    .push((thread_id.to_owned(), user_id.to_owned(), until));
            } else if state.typing.len() == before {
                // A stop for someone not shown typing: nothing to tell.
                return;
            }
            name
        };
        if self.viewing().is_none() {
            if let Some(key) = self.state.borrow().store_key.clone() {
                self.post_to_tabs(&format!(
                    "typing {key}\n{thread_id}\n{user_id}\n{}",
                    u8::from(typing)
                ));
            }
        }
        let detail = js_sys::Object::new();
        for (k, v) in [
            ("threadId", thread_id.into()),
            ("userId", user_id.into()),
            ("name", name.into()),
            ("typing", typing.into()),
        ] {
            let _ = js_sys::Reflect::set(&detail, &k.into(), &v);
        }
        self.emit("typing", detail.into());
        self.show_typing();
        if typing {
            let weak = Rc::downgrade(self);
            set_timeout((SHOWN_MS + 100) as f64, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.expire_typing();
                }
            });
        }
    }

    /// Stops showing starts that no newer one followed.
    fn expire_typing(self: &Rc<Self>) {
        let now = now_millis();
        let expired: Vec<(String, String)> = self
            .state
            .borrow()
            .typing
            .iter()
            .filter(|(_, _, until)| *until <= now)
            .map(|(t, u, _)| (t.clone(), u.clone()))
            .collect();
        for (thread, user) in expired {
            self.on_typing(&thread, &user, false);
        }
    }

    /// The open thread's "Bob is typing…" line.
    pub(super) fn show_typing(&self) {
        let text = {
            let state = self.state.borrow();
            let open = state.open_thread.as_deref();
            let thread = state.threads.iter().find(|t| Some(t.id.as_str()) == open);
            let names: Vec<String> = state
                .typing
                .iter()
                .filter(|(t, _, _)| Some(t.as_str()) == open)
                .filter_map(|(_, u, _)| thread?.member(u).map(display_name))
                .collect();
            match names.as_slice() {
                [] => String::new(),
                [one] => format!("{one} is typing…"),
                [a, b] => format!("{a} and {b} are typing…"),
                more => format!("{} people are typing…", more.len()),
            }
        };
        self.with_ui(|ui| ui.set_typing(&text));
    }
}
