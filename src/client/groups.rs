//! Threads that follow their groups' removals. A thread made from an expression naming a
//! group (`@support`) keeps that expression as its distribution. When the site's backend
//! takes someone out of the group, the server tells the devices of its old and new members
//! and of those who follow it (`group_changed`); each resolves the groups it follows again,
//! here, and takes out of the threads that follow them whoever the distribution no longer
//! names, then rotates its sender keys away from them, exactly as after a removal by a
//! member. Every device reads the same groups, so no member needs to send an update.
//!
//! Someone *added* to a group is in the threads made with it from then on, never in the
//! existing ones: the server defines the groups, and it must not be able to add a reader to
//! a conversation that is under way (PROTOCOL.md, "Who may change a thread"). A member can
//! add them, with an update as for any other member change.

use super::Inner;
use crate::error::ClientResult;
use sotto_core::membership::members_now;
use sotto_core::protocol::{Resolved, User};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

impl Inner {
    /// The users of the groups a member's change newly names (`expr` against the
    /// distribution `before`), each group resolved on its own: those, and only those, a
    /// change may bring in through a group.
    pub(super) async fn newly_chosen(
        self: &Rc<Self>,
        token: &str,
        before: &str,
        expr: &str,
        resolved: &Resolved,
    ) -> ClientResult<Vec<String>> {
        let old: Vec<String> = sotto_core::expr::parse(before)
            .map(|e| e.tags().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let (_, groups) = sotto_core::membership::distribution(expr, resolved);
        let mut ids = Vec::new();
        for g in groups.iter().filter(|g| !old.contains(g)) {
            let r = self.post_resolve(token, &format!("@{g}")).await?;
            if r.groups.contains(g) {
                ids.extend(r.users.into_iter().map(|u| u.id));
            }
        }
        Ok(ids)
    }

    /// Brings the threads that follow groups up to date, in the background. Calls while a
    /// refresh runs make it run once more after, not once each: a burst of changes (a
    /// backend's script, or a hostile server) costs two rounds, not one per change.
    pub(super) fn spawn_follow_groups(self: &Rc<Self>) {
        {
            let mut state = self.state.borrow_mut();
            state.following_groups += 1;
            if state.following_groups > 1 {
                state.following_groups = 2;
                return;
            }
        }
        let inner = self.clone();
        let epoch = self.state.borrow().epoch;
        spawn_local(async move {
            loop {
                if let Err(e) = inner.follow_groups(epoch).await {
                    inner.emit_error(&e);
                }
                let mut state = inner.state.borrow_mut();
                // Signed out meanwhile: that state (and its count) is gone.
                if state.epoch != epoch {
                    return;
                }
                state.following_groups = state.following_groups.saturating_sub(1);
                if state.following_groups == 0 {
                    return;
                }
            }
        });
    }

    /// Resolves every followed group once and takes out of the threads that follow them
    /// whoever they no longer name.
    async fn follow_groups(self: &Rc<Self>, epoch: u32) -> ClientResult<()> {
        let mut wanted: Vec<String> = Vec::new();
        for t in self.state.borrow().threads.iter().filter(|t| !t.left) {
            for g in &t.groups {
                if !wanted.contains(g) {
                    wanted.push(g.clone());
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let (token, own) = self.session()?;
        // Each group's users now; `None`: the group is gone (deleted or renamed, or its name
        // now a user's). A group that could not be read now is left out, and so are the
        // threads that follow it, until the next round.
        let mut groups: Vec<(String, Option<Vec<User>>)> = Vec::new();
        let mut failed = None;
        for group in wanted {
            let users = match self.post_resolve(&token, &format!("@{group}")).await {
                Ok(r) if r.groups.contains(&group) => Some(r.users),
                Ok(_) => None,
                Err(e) if e.code == "expr_unknown_tag" => None,
                Err(e) => {
                    failed = Some(e);
                    continue;
                }
            };
            groups.push((group, users));
        }
        if self.state.borrow().epoch != epoch {
            return Ok(());
        }
        let users_of = |g: &str| groups.iter().find(|(name, _)| name == g).map(|(_, u)| u);
        let mut removed_from = Vec::new();
        let mut changed = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            for t in state.threads.iter_mut().filter(|t| !t.left) {
                // No groups, or one this round did not read (failed, or the thread is
                // newer than the round).
                if t.groups.is_empty() || t.groups.iter().any(|g| users_of(g).is_none()) {
                    continue;
                }
                if t.groups.iter().any(|g| matches!(users_of(g), Some(None))) {
                    // A group it followed is gone: it keeps the members it has, as a list.
                    t.distribution =
                        sotto_core::expr::canonical(t.members.iter().map(|m| m.tag.as_str()));
                    t.groups.clear();
                    changed.push(t.id.clone());
                    continue;
                }
                // Which of the members the distribution still names: a group's change
                // takes people out of the threads that follow it, never anyone in.
                let known = &t.members;
                let sets: Vec<(&str, Vec<usize>)> = t
                    .groups
                    .iter()
                    .map(|g| {
                        let users = users_of(g).and_then(Option::as_ref);
                        let at = |u: &User| known.iter().position(|k| k.id == u.id);
                        (
                            g.as_str(),
                            users.into_iter().flatten().filter_map(at).collect(),
                        )
                    })
                    .collect();
                let tags: Vec<&str> = known.iter().map(|u| u.tag.as_str()).collect();
                let Ok(now) = members_now(&t.distribution, &tags, &sets) else {
                    continue;
                };
                if now.iter().all(|named| *named) {
                    continue;
                }
                let mut named = now.into_iter();
                t.members.retain(|_| named.next().unwrap_or(true));
                t.left = t.member(&own.id).is_none();
                removed_from.push(t.id.clone());
                changed.push(t.id.clone());
            }
        }
        for id in &removed_from {
            self.rotate_sender_key(id);
        }
        for id in &changed {
            self.persist(id);
        }
        if !changed.is_empty() {
            self.render();
        }
        failed.map_or(Ok(()), Err)
    }
}
