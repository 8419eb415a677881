//! Naming threads, so that threads with the same people can be told apart: "Rename" gives
//! the open thread a title that every member sees, and "New topic" starts another thread
//! with the same people under a title of its own ("Start" with the same people opens the
//! newest such thread instead of making one more).

use super::Inner;
use crate::dialog::{DialogContent, Field};

use serde_json::{Map, Value};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// The longest title kept, in characters: a title is a line in a list, not a message.
const MAX_TITLE_CHARS: usize = 100;

const TITLE: Field = Field {
    name: "title",
    label: "Title",
    kind: "text",
};

/// A title as kept: trimmed, and cut to `MAX_TITLE_CHARS`.
fn fit_title(title: &str) -> String {
    let cut: String = title.trim().chars().take(MAX_TITLE_CHARS).collect();
    cut.trim_end().to_owned()
}

impl Inner {
    /// The title typed in the dialog, trimmed, and cut to `MAX_TITLE_CHARS`.
    fn typed_title(&self) -> String {
        fit_title(&self.ui_values(&["title"]).remove(0))
    }

    /// The thread open now, if any: what both dialogs act on.
    fn open_thread(&self) -> Option<crate::model::Thread> {
        let id = self.state.borrow().open_thread.clone()?;
        self.thread(&id).ok()
    }

    /// "Rename": a title for the open thread, on every member's devices. An empty title
    /// names the thread by its members again.
    pub(super) fn show_rename_dialog(self: &Rc<Self>) {
        let Some(thread) = self.open_thread() else {
            return;
        };
        let id = thread.id.clone();
        let current = thread.attributes.get("title").and_then(Value::as_str);
        let current = current.unwrap_or_default().to_owned();
        let shown = current.clone();
        self.show_dialog(
            &DialogContent {
                title: "Rename this thread",
                lines: &["Every member sees the new title. Leave it empty to name the thread by its members."],
                code: None,
                fields: &[TITLE],
                buttons: &[("save", "Save"), ("cancel", "Cancel")],
            },
            move |inner, action| {
                let title = inner.typed_title();
                inner.with_ui(|ui| ui.dialog.hide());
                // Saved unchanged, there is nothing to tell the members.
                if action != "save" || title == fit_title(&current) {
                    return;
                }
                let id = id.clone();
                spawn_local(async move {
                    let js = match title.is_empty() {
                        true => wasm_bindgen::JsValue::NULL,
                        false => title.as_str().into(),
                    };
                    // A view asks the tab that holds the account.
                    let args = [id.as_str().into(), "title".into(), js];
                    let done = match inner.forwarded("threadSetAttribute", &args).await {
                        Some(r) => r.map(drop),
                        None => {
                            let value = match title.is_empty() {
                                true => Value::Null,
                                false => Value::String(title),
                            };
                            inner.set_attribute(&id, "title".into(), value).await
                        }
                    };
                    if let Err(e) = done {
                        inner.show_notice(Some(&e.message));
                    }
                    inner.reload_view().await;
                });
            },
        );
        self.with_ui(|ui| ui.dialog.set_value("title", &shown, false));
    }

    /// "New topic": another thread with the open one's people, under a title of its own,
    /// opened once made.
    pub(super) fn show_topic_dialog(self: &Rc<Self>) {
        let Some(thread) = self.open_thread() else {
            return;
        };
        let distribution = thread.distribution;
        self.show_dialog(
            &DialogContent {
                title: "New topic",
                lines: &["A new thread with the same people, under a title of its own."],
                code: None,
                fields: &[TITLE],
                buttons: &[("start", "Start"), ("cancel", "Cancel")],
            },
            move |inner, action| {
                let title = inner.typed_title();
                inner.with_ui(|ui| ui.dialog.hide());
                if action != "start" {
                    return;
                }
                let distribution = distribution.clone();
                spawn_local(async move {
                    let mut attributes = Map::new();
                    if !title.is_empty() {
                        attributes.insert("title".into(), Value::String(title));
                    }
                    match inner.thread_make(&distribution, attributes).await {
                        Ok(id) => {
                            inner.reload_view().await;
                            let _ = inner.thread_open(&id, true);
                        }
                        Err(e) => inner.show_notice(Some(&e.message)),
                    }
                });
            },
        );
    }
}
