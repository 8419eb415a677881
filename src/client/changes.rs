//! Changes to sent messages: its sender's edit and delete-for-everyone, and any member's
//! reaction. Each travels as a body of its own (kinds `edit`, `delete`, `react`) over the
//! thread's sessions, like a message; every member's device applies it by the rules of
//! `sotto_core::amend`, so the server sees nothing and a member changes nothing not theirs.

use super::{to_js, unknown_thread, Inner};
use crate::dialog::DialogContent;
use crate::error::{ClientError, ClientResult};
use crate::model::Status;
use sotto_core::amend::valid_reaction;
use sotto_core::sealing::{Kind, MessageBody, MAX_TEXT_BYTES};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// Sends the change `kind` of message `message_id` (`text`: the new text, or the
    /// reaction) to every member's devices, then applies it here. A reaction toggles: the
    /// one this user already shows is taken back. Returns the message as it now is.
    pub(super) async fn change_message(
        self: &Rc<Self>,
        thread_id: &str,
        message_id: &str,
        kind: Kind,
        text: String,
        html: Option<String>,
    ) -> ClientResult<JsValue> {
        // A view's UI: the tab that holds the account sends it.
        let method = match kind {
            Kind::Edit => "threadMessageEdit",
            Kind::Delete => "threadMessageDelete",
            _ => "threadMessageReact",
        };
        let args = [thread_id.into(), message_id.into(), text.as_str().into()];
        if let Some(done) = self.forwarded(method, &args).await {
            return done;
        }
        let (_, own) = self.session()?;
        let (members, mut text, after) = {
            let state = self.state.borrow();
            let t = state
                .threads
                .iter()
                .find(|t| t.id == thread_id)
                .ok_or_else(|| unknown_thread(thread_id))?;
            if t.left {
                return Err(ClientError::new(
                    "not_a_member",
                    "you are no longer a member of this thread",
                ));
            }
            let m = t
                .messages
                .iter()
                .find(|m| m.id == message_id)
                .ok_or_else(|| {
                    ClientError::new(
                        "unknown_message",
                        "no such message in this thread on this device",
                    )
                })?;
            if m.deleted {
                return Err(ClientError::new(
                    "message_deleted",
                    "this message was deleted",
                ));
            }
            // Nobody else has it yet: a change would reach them before the message.
            if m.status == Status::Pending {
                return Err(ClientError::new(
                    "message_pending",
                    "this message is not sent yet; change it once it is",
                ));
            }
            if kind != Kind::React && m.sender_id != own.id {
                return Err(ClientError::new(
                    "not_sender",
                    "only its sender can edit or delete a message",
                ));
            }
            let mine = m.reactions.iter().find(|r| r.user_id == own.id);
            let text = match kind {
                // Toggled: the reaction already shown is taken back.
                Kind::React if mine.is_some_and(|r| r.emoji == text) => String::new(),
                _ => text,
            };
            // Taking back a reaction there is not: nothing to tell anyone.
            if kind == Kind::React && text.is_empty() && mine.is_none() {
                return Ok(to_js(m));
            }
            // After this user's last change of it, even if a device that made that one
            // runs ahead of this one's clock: receivers keep only the newest.
            let after = match kind {
                Kind::Edit => m.edited_at,
                _ => mine.map(|r| r.at),
            };
            (t.members.clone(), text, after.map_or(0, |at| at + 1))
        };
        match kind {
            Kind::Edit if text.trim().is_empty() => {
                return Err(ClientError::new(
                    "empty_message",
                    "an edit needs some text (delete the message instead)",
                ))
            }
            Kind::Edit
                if text.len() > MAX_TEXT_BYTES
                    || html.as_ref().is_some_and(|h| h.len() > MAX_TEXT_BYTES) =>
            {
                return Err(ClientError::new(
                    "message_too_long",
                    format!("a message is limited to {MAX_TEXT_BYTES} bytes"),
                ))
            }
            Kind::React if !valid_reaction(&text) => {
                return Err(ClientError::new(
                    "bad_reaction",
                    "a reaction is one emoji (at most 32 bytes, no spaces)",
                ))
            }
            Kind::Delete => text.clear(),
            _ => {}
        }
        let mut body = MessageBody {
            kind,
            target: Some(message_id.to_owned()),
            html: html.filter(|_| kind == Kind::Edit),
            ..self.body_for(thread_id, text)?
        };
        body.sent_at = body.sent_at.max(after);
        self.deliver(&body, &members).await?;
        self.remember(&body.message_id);
        self.apply_change(&body, &own.id).await;
        let state = self.state.borrow();
        let t = state.threads.iter().find(|t| t.id == thread_id);
        Ok(to_js(&t.and_then(|t| {
            t.messages.iter().find(|m| m.id == message_id)
        })))
    }

    /// Applies a member's change to the message it names, if this device has it and the
    /// rules allow it; saves, redraws and tells the page (`thread-message-update`).
    pub(super) async fn apply_change(self: &Rc<Self>, body: &MessageBody, own_id: &str) {
        let changed = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            // A message this device had and dropped (expired or destroyed) never comes
            // back: nothing to hold for it.
            let gone = body.target.as_ref().is_some_and(|t| state.seen.contains(t));
            let Some(t) = state.threads.iter_mut().find(|t| t.id == body.thread_id) else {
                // Its thread may come with the message, later: held here meanwhile.
                if !gone {
                    crate::model::hold(&mut state.held, body);
                }
                return;
            };
            let target = body.target.as_deref();
            let Some(m) = t
                .messages
                .iter_mut()
                .find(|m| Some(m.id.as_str()) == target)
            else {
                // Its message may come later (sent again after a failed first envelope):
                // held until then, the oldest dropped past the limit.
                if !gone {
                    crate::model::hold(&mut t.held, body);
                    self.persist(&body.thread_id);
                }
                return;
            };
            match m.amend(body, &t.members, own_id) {
                Ok(true) => m.clone(),
                Ok(false) => return,
                Err(e) => {
                    web_sys::console::warn_1(&format!("sotto: change refused: {e}").into());
                    return;
                }
            }
        };
        self.save_now(&body.thread_id).await;
        self.render();
        self.emit("thread-message-update", to_js(&changed));
    }

    /// The UI's change to the open thread's message `message_id` (`edit` with its new
    /// text, `react` with an emoji, `delete`), in the background; a failure is noticed.
    pub(super) fn spawn_change(self: &Rc<Self>, act: &str, message_id: String, text: String) {
        let kind = match act {
            "edit" => Kind::Edit,
            "delete" => Kind::Delete,
            _ => Kind::React,
        };
        let inner = self.clone();
        spawn_local(async move {
            let Some(thread) = inner.state.borrow().open_thread.clone() else {
                return;
            };
            let done = inner.change_message(&thread, &message_id, kind, text.clone(), None);
            if let Err(e) = done.await {
                if kind == Kind::Edit {
                    inner.with_ui(|ui| ui.resume(true, message_id, &thread, &text));
                }
                inner.show_notice(Some(&e.message));
                inner.emit_error(&e);
            }
        });
    }

    /// Asks before deleting a message for everyone: it cannot be undone.
    pub(super) fn confirm_delete(self: &Rc<Self>, message_id: String) {
        self.show_dialog(
            &DialogContent {
                title: "Delete this message?",
                lines: &["It is deleted for everyone in this thread, and cannot be undone."],
                code: None,
                fields: &[],
                buttons: &[("cancel", "Cancel"), ("delete", "Delete for everyone")],
            },
            move |inner, action| {
                inner.with_ui(|ui| ui.dialog.hide());
                if action == "delete" {
                    inner.spawn_change("delete", message_id.clone(), String::new());
                }
            },
        );
    }
}
