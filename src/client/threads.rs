//! The thread API: making threads (or finding one with the same members), attributes shared
//! with every member, disappearing messages, membership changes, leaving, and this device's
//! own housekeeping (archive, restore, expunge, destroying messages, paging).
//!
//! A change every member must see travels as an `update` body — carrying the new
//! distribution, attributes and expiration with a new version (`meta_at`) — to the old and
//! the new members alike, so that removed members learn it too.

use super::lifecycle::Lifecycle;
use super::{unknown_thread, Inner};
use crate::error::{ClientError, ClientResult};
use crate::history;
use crate::model::{Message, Thread};
use crate::util::{now_millis, random_id};
use serde_json::{Map, Value};
use sotto_core::protocol::{Resolved, User};
use sotto_core::sealing::{Kind, MessageBody};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// Attributes are small: their JSON is limited to this many bytes.
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

fn check_attributes(attributes: &Map<String, Value>) -> ClientResult<()> {
    let size = serde_json::to_string(attributes)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_ATTRIBUTES_BYTES {
        return Err(ClientError::new(
            "attributes_too_large",
            format!("thread attributes are limited to {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

impl Inner {
    async fn resolve(self: &Rc<Self>, expr: &str) -> ClientResult<Resolved> {
        let (token, _) = self.session()?;
        sotto_core::expr::parse(expr)
            .map_err(|e| ClientError::new("expr_syntax", e.to_string()))?;
        self.post_resolve(&token, expr).await
    }

    /// The users of `expr` plus this user, and that expression.
    async fn resolve_with_self(self: &Rc<Self>, expr: &str) -> ClientResult<(String, Resolved)> {
        let (_, own) = self.session()?;
        // The maker is always a member of their own thread: named, unless the expression
        // has them already (an agent writing to their own team is in it through the team,
        // so leaving the team takes them out).
        let mut resolved = self.resolve(expr).await?;
        if resolved.users.iter().any(|u| u.id == own.id) {
            return Ok((expr.to_owned(), resolved));
        }
        resolved.users.push(own);
        resolved.canonical =
            sotto_core::expr::canonical(resolved.users.iter().map(|u| u.tag.as_str()));
        Ok((
            format!(
                "({expr}) + @{}",
                resolved.users.last().map_or("", |u| &u.tag)
            ),
            resolved,
        ))
    }

    pub(super) async fn thread_make(
        self: &Rc<Self>,
        expr: &str,
        attributes: Map<String, Value>,
    ) -> ClientResult<String> {
        // "New topic" in a view: the tab that holds the account makes the thread.
        let args = [expr.into(), super::to_js(&attributes)];
        if let Some(made) = self.forwarded("threadMake", &args).await {
            return made.map(|id| id.as_string().unwrap_or_default());
        }
        check_attributes(&attributes)?;
        let (full, resolved) = self.resolve_with_self(expr).await?;
        let id = random_id()?;
        let mut thread = Thread::resolved(id.clone(), &full, resolved);
        if !attributes.is_empty() {
            thread.attributes = attributes;
            thread.meta_at = now_millis();
        }
        self.add_thread(thread);
        // Saved before it resolves, so a view that asked for it finds it when it reads.
        self.save_now(&id).await;
        Ok(id)
    }

    /// The thread with this distribution and everyone it names (the newest, not left), or a
    /// new one.
    pub(super) async fn thread_ensure(
        self: &Rc<Self>,
        expr: &str,
        attributes: Map<String, Value>,
    ) -> ClientResult<String> {
        // "Start" in a view: the tab that holds the account finds or makes the thread.
        let args = [expr.into(), super::to_js(&attributes)];
        if let Some(found) = self.forwarded("threadEnsure", &args).await {
            return found.map(|id| id.as_string().unwrap_or_default());
        }
        let (full, resolved) = self.resolve_with_self(expr).await?;
        let (distribution, _) = sotto_core::membership::distribution(&full, &resolved);
        // The same distribution, and everyone it names now a member (a thread that follows
        // a group does not gain its newcomers: then it is time for a new one).
        let found = self
            .state
            .borrow()
            .threads
            .iter()
            .find(|t| {
                // Not one left, nor one archived (it would open without showing in the list).
                !t.left
                    && !t.archived
                    && t.distribution == distribution
                    && resolved.users.iter().all(|u| t.member(&u.id).is_some())
            })
            .map(|t| t.id.clone());
        match found {
            Some(id) => Ok(id),
            None => self.thread_make(expr, attributes).await,
        }
    }

    /// Sends the thread's current distribution, attributes and expiration, as a new version,
    /// to `members`.
    async fn send_update(self: &Rc<Self>, thread_id: &str, members: &[User]) -> ClientResult<()> {
        let body = MessageBody {
            kind: Kind::Update,
            ..self.body_for(thread_id, String::new())?
        };
        self.deliver(&body, members).await
    }

    /// Applies `change` to the thread here, then tells every member.
    async fn change_thread(
        self: &Rc<Self>,
        thread_id: &str,
        change: impl FnOnce(&mut Thread),
    ) -> ClientResult<()> {
        let before = self.thread(thread_id)?;
        if before.left {
            return Err(ClientError::new(
                "not_a_member",
                "you are no longer a member of this thread",
            ));
        }
        {
            let mut state = self.state.borrow_mut();
            let t = state.thread_mut(thread_id)?;
            change(t);
            t.meta_at = now_millis().max(t.meta_at + 1);
        }
        self.persist(thread_id);
        self.render();
        let after = self.thread(thread_id)?;
        let mut everyone = before.members;
        for m in after.members {
            if !everyone.iter().any(|u| u.id == m.id) {
                everyone.push(m);
            }
        }
        self.send_update(thread_id, &everyone).await
    }

    pub(super) async fn set_attribute(
        self: &Rc<Self>,
        thread_id: &str,
        key: String,
        value: Value,
    ) -> ClientResult<()> {
        let mut attributes = self.thread(thread_id)?.attributes;
        if value.is_null() {
            attributes.remove(&key);
        } else {
            attributes.insert(key, value);
        }
        check_attributes(&attributes)?;
        self.change_thread(thread_id, move |t| t.attributes = attributes)
            .await
    }

    pub(super) async fn set_expiration(
        self: &Rc<Self>,
        thread_id: &str,
        seconds: f64,
    ) -> ClientResult<()> {
        if !(0.0..=u32::MAX as f64).contains(&seconds) || seconds.fract() != 0.0 {
            return Err(ClientError::new(
                "bad_expiration",
                "expiration is a whole number of seconds, 0 to turn it off",
            ));
        }
        let expiration = (seconds > 0.0).then_some(seconds as u32);
        self.change_thread(thread_id, move |t| t.expiration = expiration)
            .await
    }

    /// Changes the distribution to `current + expr` (amend) or `current - expr` (repeal).
    pub(super) async fn change_distribution(
        self: &Rc<Self>,
        thread_id: &str,
        expr: &str,
        amend: bool,
    ) -> ClientResult<()> {
        sotto_core::expr::parse(expr)
            .map_err(|e| ClientError::new("expr_syntax", e.to_string()))?;
        let current = self.thread(thread_id)?.distribution;
        let op = if amend { '+' } else { '-' };
        let full = format!("({current}) {op} ({expr})");
        let resolved = self.resolve(&full).await?;
        let (token, own) = self.session()?;
        let chosen = self
            .newly_chosen(&token, &current, &full, &resolved)
            .await?;
        self.change_thread(thread_id, move |t| {
            t.set_distribution(&full, resolved, &chosen);
            t.left = !t.members.iter().any(|m| m.id == own.id);
        })
        .await?;
        if !amend {
            // Only now, with the removed told of the change, does a new sender key start.
            self.rotate_sender_key(thread_id);
        }
        Ok(())
    }

    /// A member by user ID or tag, as an expression.
    pub(super) async fn member_expr(self: &Rc<Self>, who: &str) -> ClientResult<String> {
        let who = who.trim();
        if let Some(tag) = who.strip_prefix('@') {
            return Ok(format!("@{tag}"));
        }
        let (token, _) = self.session()?;
        let user: User = self.get_user(&token, who).await?;
        Ok(format!("@{}", user.tag))
    }

    pub(super) async fn leave(self: &Rc<Self>, thread_id: &str) -> ClientResult<()> {
        let thread = self.thread(thread_id)?;
        if thread.left {
            return Ok(());
        }
        let body = MessageBody {
            kind: Kind::Leave,
            ..self.body_for(thread_id, String::new())?
        };
        self.deliver(&body, &thread.members).await?;
        let (_, own) = self.session()?;
        if let Ok(t) = self.state.borrow_mut().thread_mut(thread_id) {
            t.left = true;
            t.remove_member(&own.id);
        }
        self.persist(thread_id);
        self.render();
        Ok(())
    }

    /// This device only: hide or show a thread, forget it, or forget some of its messages.
    pub(super) fn set_archived(
        self: &Rc<Self>,
        thread_id: &str,
        archived: bool,
    ) -> ClientResult<()> {
        self.session()?;
        {
            let mut state = self.state.borrow_mut();
            let t = state.thread_mut(thread_id)?;
            t.archived = archived;
            if archived && state.open_thread.as_deref() == Some(thread_id) {
                state.open_thread = None;
            }
        }
        self.persist(thread_id);
        self.render();
        Ok(())
    }

    pub(super) async fn expunge(self: &Rc<Self>, thread_id: &str) -> ClientResult<()> {
        self.session()?;
        let key = {
            let mut state = self.state.borrow_mut();
            let pos = state
                .threads
                .iter()
                .position(|t| t.id == thread_id)
                .ok_or_else(|| unknown_thread(thread_id))?;
            state.threads.remove(pos);
            if state.open_thread.as_deref() == Some(thread_id) {
                state.open_thread = None;
            }
            state.store_key.clone()
        };
        if let Some(key) = key {
            history::remove(&key, thread_id).await?;
            self.tell_views(&key);
        }
        self.render();
        Ok(())
    }

    pub(super) fn destroy_messages(
        self: &Rc<Self>,
        thread_id: &str,
        ids: &[String],
    ) -> ClientResult<u32> {
        self.session()?;
        let removed = {
            let mut state = self.state.borrow_mut();
            let t = state.thread_mut(thread_id)?;
            let before = t.messages.len();
            t.messages.retain(|m| !ids.contains(&m.id));
            (before - t.messages.len()) as u32
        };
        self.persist(thread_id);
        self.render();
        Ok(removed)
    }

    /// Up to `limit` messages sent before `before` (Unix ms), oldest first.
    pub(super) fn messages_page(
        &self,
        thread_id: &str,
        limit: Option<usize>,
        before: Option<i64>,
    ) -> ClientResult<Vec<Message>> {
        self.session()?;
        let t = self.thread(thread_id)?;
        let older: Vec<Message> = t
            .messages
            .into_iter()
            .filter(|m| before.is_none_or(|b| m.sent_at < b))
            .collect();
        let skip = limit.map_or(0, |l| older.len().saturating_sub(l));
        Ok(older.into_iter().skip(skip).collect())
    }
}

impl Inner {
    /// Saves a thread to this browser's history (in the background).
    pub(super) fn persist(self: &Rc<Self>, thread_id: &str) {
        let (inner, id) = (self.clone(), thread_id.to_owned());
        spawn_local(async move { inner.save_now(&id).await });
    }

    /// Saves a thread to this browser's history before going on: used where a lost write
    /// would lose a message (before an envelope is acknowledged, before a send resolves).
    /// Writes run one after another, each taking the thread as it is when its turn comes,
    /// so an older copy can never overwrite a newer one.
    pub(super) async fn save_now(&self, thread_id: &str) {
        let mut done = None;
        let turn = js_sys::Promise::new(&mut |resolve, _| done = Some(resolve));
        let previous = self.write_chain.replace(turn);
        let _ = wasm_bindgen_futures::JsFuture::from(previous).await;
        let pending = {
            let mut state = self.state.borrow_mut();
            let key = state.store_key.clone();
            key.zip(state.threads.iter_mut().find(|t| t.id == thread_id))
                .map(|(key, t)| (history::prepare(&key, t), key))
        };
        if let Some((pending, key)) = pending {
            match async { pending?.write().await }.await {
                Ok(()) => self.tell_views(&key),
                Err(e) => web_sys::console::warn_1(
                    &format!("sotto: history not saved: {}", e.message).into(),
                ),
            }
        }
        if let Some(resolve) = done {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    pub(super) fn add_thread(self: &Rc<Self>, thread: Thread) {
        let id = thread.id.clone();
        self.state.borrow_mut().threads.insert(0, thread);
        self.persist(&id);
        self.render();
    }

    /// Opens a thread; `focus` moves the keyboard to its composer (a click in Sotto's UI,
    /// never a call from the page, whose focus stays where it is).
    pub(super) fn thread_open(self: &Rc<Self>, id: &str, focus: bool) -> ClientResult<()> {
        let reading = matches!(
            self.state.borrow().life,
            Lifecycle::SavedHistory(_) | Lifecycle::Viewing { .. } | Lifecycle::Loading { .. }
        );
        // Saved history (offline, or in a view) may be read without a session.
        if !reading {
            self.session()?;
        }
        {
            let mut state = self.state.borrow_mut();
            state.thread_mut(id)?;
            state.open_thread = Some(id.to_owned());
        }
        self.show_notice(None);
        // On a phone the thread takes the list's place before it is read.
        self.with_ui(|ui| ui.show_thread_pane());
        self.read_open_thread();
        if focus {
            self.with_ui(|ui| ui.focus_composer());
        }
        if !reading {
            let (inner, id) = (self.clone(), id.to_owned());
            spawn_local(async move {
                // Best effort: the header is only more precise for it.
                let _ = inner.check_members(&id).await;
            });
        }
        Ok(())
    }

    /// Whether the open thread can be seen: the page is on screen and the thread's messages
    /// are displayed (not in a minimised widget, nor behind the list on a phone). Without a
    /// UI, the page says so by opening it.
    pub(super) fn on_screen(&self) -> bool {
        let shown = || {
            self.ui
                .borrow()
                .as_ref()
                .is_some_and(|ui| ui.thread_shown())
        };
        crate::util::page_visible() && (self.options.headless || shown())
    }

    /// The open thread is read, if it is on screen (a widget in a background tab or
    /// minimised claims nothing): its unread count goes to zero and the members are told.
    /// Redraws.
    pub(super) fn read_open_thread(self: &Rc<Self>) {
        let open = self.state.borrow().open_thread.clone();
        if let Some(id) = open.filter(|_| self.on_screen()) {
            let cleared = self
                .state
                .borrow_mut()
                .thread_mut(&id)
                .is_ok_and(|t| std::mem::take(&mut t.unread) > 0);
            // A view does not write; the holder keeps its own count.
            if cleared && self.viewing().is_none() {
                self.persist(&id);
            }
            self.mark_read(&id);
        }
        self.render();
    }

    pub(super) fn thread(&self, id: &str) -> ClientResult<Thread> {
        self.state
            .borrow()
            .threads
            .iter()
            .find(|t| t.id == id)
            .cloned()
            .ok_or_else(|| unknown_thread(id))
    }
}
