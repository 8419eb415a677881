//! Whom to trust: identity changes (the warning stays until it is acknowledged), safety
//! numbers and the "Verify" dialog; a contact the person verified must be verified again
//! after a change before anything is sent to them.

use super::Inner;
use crate::dialog::DialogContent;
use crate::error::{ClientError, ClientResult};

use sotto_core::protocol::User;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// Tells the page (and the UI) that a contact's identity changed.
    pub(super) fn identity_changed(&self, user_id: &str) {
        let detail = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&detail, &"userId".into(), &user_id.into());
        self.emit("identitychange", detail.into());
        self.render();
    }

    /// `safetyNumber(userId)`: the number this user and `user_id` can compare.
    pub(super) async fn safety_number(self: &Rc<Self>, user_id: &str) -> ClientResult<JsValue> {
        if let Some(n) = self.forwarded("safetyNumber", &[user_id.into()]).await {
            return n;
        }
        let (token, _) = self.session()?;
        let user: User = self.get_user(&token, user_id).await?;
        let known = self.with_account(|a| Ok(a.known_identity(&user.id)))?;
        let identity = match known {
            Some(i) => i,
            None => {
                self.verified_devices(&user.id, &token)
                    .await?
                    .ok_or_else(|| {
                        ClientError::new("no_identity", "this user has not set up Sotto yet")
                    })?
                    .identity
            }
        };
        let (number, changed, verified) = self.with_account(|a| {
            Ok((
                a.safety_number(&user.id, &identity),
                a.identity_warnings().any(|u| u == user.id),
                a.is_verified(&user.id),
            ))
        })?;
        let out = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&out, &"userId".into(), &user.id.as_str().into());
        let _ = js_sys::Reflect::set(&out, &"number".into(), &number.as_str().into());
        let _ = js_sys::Reflect::set(&out, &"changed".into(), &changed.into());
        let _ = js_sys::Reflect::set(&out, &"verified".into(), &verified.into());
        Ok(out.into())
    }

    /// `markVerified(userId, number)`: the person compared the safety `number` with
    /// `user_id` and it matched. The identity is pinned as verified (a later change then
    /// blocks sending to them until verified again) and any warning about it is settled —
    /// unless the key changed since `number` was shown (`safety_number_changed`).
    pub(super) async fn mark_verified(
        self: &Rc<Self>,
        user_id: &str,
        number: &str,
    ) -> ClientResult<()> {
        let args = [user_id.into(), number.into()];
        if let Some(done) = self.forwarded("markVerified", &args).await {
            return done.map(drop);
        }
        self.with_account(|a| {
            a.mark_verified(user_id, number).map_err(|e| match e {
                sotto_core::CoreError::NoSession(_) => ClientError::new(
                    "no_identity",
                    "no key is known for this user yet: look at their safety number first",
                ),
                _ => ClientError::new(
                    "safety_number_changed",
                    "Their key changed while you compared the numbers: compare the new number.",
                ),
            })
        })?;
        self.save_account().await?;
        self.render();
        Ok(())
    }

    /// `acknowledgeIdentityChange(userId)`: the person saw that `user_id`'s key changed or
    /// that they have a new device. The note goes; a contact they had verified still waits
    /// for `markVerified`.
    pub(super) async fn acknowledge_identity_change(
        self: &Rc<Self>,
        user_id: &str,
    ) -> ClientResult<()> {
        let args = [user_id.into()];
        if let Some(done) = self.forwarded("acknowledgeIdentityChange", &args).await {
            return done.map(drop);
        }
        self.with_account(|a| {
            a.acknowledge_identity_change(user_id);
            Ok(())
        })?;
        self.state.borrow_mut().new_devices.retain(|u| u != user_id);
        self.save_account().await?;
        self.render();
        Ok(())
    }

    /// The "Verify" dialog: the safety number with each other member of the open thread,
    /// and for each a button that verifies exactly the number shown (never several people
    /// at once), or dismisses the warning about a changed key.
    pub(super) async fn show_safety_numbers(self: &Rc<Self>) -> ClientResult<()> {
        let own = match self.viewing() {
            Some(_) => self.state.borrow().life.user().cloned(),
            None => Some(self.session()?.1),
        };
        let own = own.ok_or_else(|| ClientError::new("not_signed_in", "not signed in"))?;
        let thread_id = self
            .state
            .borrow()
            .open_thread
            .clone()
            .ok_or_else(|| ClientError::new("no_thread", "Open a thread first."))?;
        let members = self.thread(&thread_id)?.members;
        let mut lines: Vec<String> = vec![
            "Compare these numbers with each person, in person or on a call. If they match, no one can read along.".into(),
        ];
        // (action, label, user, number shown)
        let mut actions: Vec<(String, String, String, String)> = Vec::new();
        for m in members.iter().filter(|m| m.id != own.id) {
            let name = crate::model::display_name(m);
            match self.safety_number(&m.id).await {
                Ok(n) => {
                    let field = |k: &str| js_sys::Reflect::get(&n, &k.into()).ok();
                    let digits = field("number")
                        .and_then(|v| v.as_string())
                        .unwrap_or_default();
                    let verified = field("verified").is_some_and(|v| v.is_truthy());
                    let changed = field("changed").is_some_and(|v| v.is_truthy());
                    let mark = match (changed, verified) {
                        (true, _) => " (key changed)",
                        (false, true) => " (verified)",
                        (false, false) => "",
                    };
                    // The name, then its number on a line of its own, drawn as a grid.
                    lines.push(format!("{name}{mark}:"));
                    lines.push(digits.clone());
                    if !verified {
                        let label = format!("{name}'s number matches");
                        actions.push((
                            format!("verify:{}", actions.len()),
                            label,
                            m.id.clone(),
                            digits,
                        ));
                    }
                    if changed {
                        let label = format!("Dismiss warning for {name}");
                        actions.push((
                            format!("dismiss:{}", actions.len()),
                            label,
                            m.id.clone(),
                            String::new(),
                        ));
                    }
                }
                Err(e) => lines.push(format!("{name}: {}", e.message)),
            }
        }
        if lines.len() == 1 {
            lines.push("There is nobody else in this thread.".into());
        }
        let mut buttons: Vec<(&str, &str)> = actions
            .iter()
            .map(|(action, label, _, _)| (action.as_str(), label.as_str()))
            .collect();
        buttons.push(("close", "Done"));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let chosen = actions.clone();
        self.show_dialog(
            &DialogContent {
                title: "Safety numbers",
                lines: &refs,
                code: None,
                fields: &[],
                buttons: &buttons,
            },
            move |inner, action| {
                inner.with_ui(|ui| ui.dialog.hide());
                let Some((_, _, user, number)) = chosen.iter().find(|a| a.0 == action).cloned()
                else {
                    return;
                };
                let verify = action.starts_with("verify:");
                spawn_local(async move {
                    let done = if verify {
                        inner.mark_verified(&user, &number).await
                    } else {
                        inner.acknowledge_identity_change(&user).await
                    };
                    if let Err(e) = done {
                        inner.show_notice(Some(&e.message));
                    }
                });
            },
        );
        Ok(())
    }
}
