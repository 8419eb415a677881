//! Disappearing messages: each is deleted on this device when its time comes.

use super::Inner;
use crate::util::{clear_timeout, now_millis, set_timeout};
use std::rc::Rc;

impl Inner {
    /// Deletes expired disappearing messages now, and sets a timer for the next one.
    pub(super) fn schedule_sweep(self: &Rc<Self>) {
        let now = now_millis();
        let mut changed = Vec::new();
        let next = {
            let mut state = self.state.borrow_mut();
            clear_timeout(state.sweep_timer.take());
            for t in state.threads.iter_mut() {
                let before = t.messages.len();
                t.messages
                    .retain(|m| m.expires_at.is_none_or(|at| at > now));
                if t.messages.len() != before {
                    changed.push(t.id.clone());
                }
            }
            state
                .threads
                .iter()
                .flat_map(|t| t.messages.iter().filter_map(|m| m.expires_at))
                .min()
        };
        for id in &changed {
            self.persist(id);
        }
        if !changed.is_empty() {
            self.render();
        }
        if let Some(at) = next {
            let weak = Rc::downgrade(self);
            let timer = set_timeout((at - now).max(0) as f64 + 10.0, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.schedule_sweep();
                }
            });
            self.state.borrow_mut().sweep_timer = timer;
        }
    }
}
