//! The modal dialog inside the shadow root: provisioning ("Generate a new key" / "Import
//! from a running client" / "Restore from a backup"), the link code to wait with, a link
//! request to approve, a safety number to compare, a backup to make.
//! One click listener serves every button through `data-action`, so a handler may replace
//! or hide the dialog while it runs.
//!
//! It is modal to Sotto, not to the page around it: while it shows, the rest of Sotto is
//! `inert`, Tab goes round its own controls, Escape takes its way out (if it has one), and
//! the focus goes back where it was when it closes. The host page stays usable.

use crate::error::{js_failure, ClientResult};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, HtmlElement, KeyboardEvent};

type Handler = Rc<dyn Fn(&str)>;

/// The buttons Escape presses: ways out that change nothing. A dialog without one waits
/// for a choice: the first choice of a key, a link request (Decline tells the other
/// browser), the only showing of a backup (Done).
const ESCAPE: &str = "[data-action=cancel],[data-action=close],[data-action=back]";

pub struct Dialog {
    doc: Document,
    overlay: Element,
    panel: Element,
    handler: Rc<RefCell<Option<Handler>>>,
    /// What had the focus before the dialog showed: it gets it back on hide.
    before: RefCell<Option<HtmlElement>>,
    _listeners: [Closure<dyn FnMut(web_sys::Event)>; 2],
}

/// Focuses `e`, if it is an element that can be.
fn focus(e: Option<Element>) {
    if let Some(e) = e.and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        let _ = e.focus();
    }
}

/// What a dialog shows: a title, lines of text, an optional code in large type, labelled
/// input fields, buttons as `(action, label)`.
pub struct DialogContent<'a> {
    pub title: &'a str,
    pub lines: &'a [&'a str],
    pub code: Option<&'a str>,
    pub fields: &'a [Field<'a>],
    pub buttons: &'a [(&'a str, &'a str)],
}

/// An input in a dialog; read it with [`Dialog::value`] when a button is pressed.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    /// `password` hides what is typed; `textarea` takes long text such as a backup.
    pub kind: &'a str,
}

impl Dialog {
    pub fn mount(doc: &Document, parent: &Element) -> ClientResult<Dialog> {
        let overlay = doc.create_element("div").map_err(|e| js_failure("ui", e))?;
        overlay.set_class_name("overlay");
        let _ = overlay.set_attribute("hidden", "");
        let panel = doc.create_element("div").map_err(|e| js_failure("ui", e))?;
        panel.set_class_name("dialog");
        let _ = panel.set_attribute("role", "dialog");
        let _ = panel.set_attribute("aria-modal", "true");
        let _ = panel.set_attribute("aria-labelledby", "sotto-dialog-title");
        let _ = overlay.append_child(&panel);
        let _ = parent.append_child(&overlay);
        let handler: Rc<RefCell<Option<Handler>>> = Rc::new(RefCell::new(None));
        let on_click = {
            let handler = handler.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
                let Some(action) = target
                    .and_then(|t| t.closest("[data-action]").ok().flatten())
                    .and_then(|b| b.get_attribute("data-action"))
                else {
                    return;
                };
                let current = handler.borrow().clone();
                if let Some(h) = current {
                    h(&action);
                }
            })
        };
        panel
            .add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        // On all of Sotto: a Tab from the page that lands behind the dialog comes into it.
        let on_key = {
            let (panel, overlay) = (panel.clone(), overlay.clone());
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let Some(k) = e.dyn_ref::<KeyboardEvent>() else {
                    return;
                };
                if overlay.has_attribute("hidden") {
                    return;
                }
                if k.key() == "Escape" && !k.is_composing() {
                    // Handled here: a widget around Sotto does not also close on it.
                    e.prevent_default();
                    e.stop_propagation();
                    let way_out = panel.query_selector(ESCAPE).ok().flatten();
                    if let Some(b) = way_out.and_then(|b| b.dyn_into::<HtmlElement>().ok()) {
                        b.click();
                    }
                } else if k.key() == "Enter"
                    && !k.is_composing()
                    && k.key_code() != 229
                    && !k.repeat()
                {
                    // Enter in a one-line field goes to the next field, and in the last
                    // presses the dialog's first choice, as in a form ("Save", "Make
                    // backup"). A textarea keeps its new lines; a held key presses nothing
                    // twice; the Enter that ends an input method's composition is its own.
                    let at: Option<Element> = e.target().and_then(|t| t.dyn_into().ok());
                    if at.as_ref().is_some_and(|a| a.tag_name() == "INPUT") {
                        e.prevent_default();
                        let next = at
                            .and_then(|a| a.closest("label").ok().flatten())
                            .and_then(|l| l.next_element_sibling())
                            .filter(|n| n.tag_name() == "LABEL")
                            .and_then(|l| l.query_selector("input,textarea").ok().flatten());
                        let go = next.or_else(|| panel.query_selector(".primary").ok().flatten());
                        if let Some(b) = go.and_then(|b| b.dyn_into::<HtmlElement>().ok()) {
                            match b.tag_name().as_str() {
                                "BUTTON" => b.click(),
                                _ => {
                                    let _ = b.focus();
                                }
                            }
                        }
                    }
                } else if k.key() == "Tab" {
                    // Fields come before the row of buttons, which ends the dialog.
                    let pick = |selector| panel.query_selector(selector).ok().flatten();
                    let (first, last) = (
                        pick("input,textarea,button"),
                        pick(".actions button:last-child"),
                    );
                    let at: Option<Element> = e.target().and_then(|t| t.dyn_into().ok());
                    let inside = at.as_ref().is_some_and(|n| panel.contains(Some(n)));
                    let edge = if k.shift_key() { &first } else { &last };
                    if !inside || at == *edge {
                        e.prevent_default();
                        focus(if k.shift_key() { last } else { first });
                    }
                }
            })
        };
        parent
            .add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        Ok(Dialog {
            doc: doc.clone(),
            overlay,
            panel,
            handler,
            before: RefCell::default(),
            _listeners: [on_click, on_key],
        })
    }

    /// Shows `content`; `on_action` gets the action of the button pressed.
    pub fn show(
        &self,
        content: &DialogContent<'_>,
        on_action: impl Fn(&str) + 'static,
    ) -> ClientResult<()> {
        // The body is not generic: one copy of it, rather than one per dialog (13 KB).
        self.show_with(content, Rc::new(on_action))
    }

    fn show_with(&self, content: &DialogContent<'_>, on_action: Handler) -> ClientResult<()> {
        self.panel.set_text_content(None);
        let make = |tag: &str, class: &str, text: &str| -> ClientResult<Element> {
            let e = self
                .doc
                .create_element(tag)
                .map_err(|e| js_failure("ui", e))?;
            if !class.is_empty() {
                e.set_class_name(class);
            }
            e.set_text_content(Some(text));
            Ok(e)
        };
        let title = make("h2", "dialog-title", content.title)?;
        let _ = title.set_attribute("id", "sotto-dialog-title");
        let _ = self.panel.append_child(&title);
        for line in content.lines {
            // A safety number (digits in groups) is drawn as a grid (ui.css).
            let number = !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit() || b == b' ');
            let p = make("p", if number { "number" } else { "" }, line)?;
            let _ = self.panel.append_child(&p);
        }
        if let Some(code) = content.code {
            let c = make("p", "code", code)?;
            let _ = self.panel.append_child(&c);
        }
        let mut first_field: Option<HtmlElement> = None;
        for f in content.fields {
            let label = make("label", "field", f.label)?;
            let input = if f.kind == "textarea" {
                make("textarea", "", "")?
            } else {
                let i = make("input", "", "")?;
                let _ = i.set_attribute("type", f.kind);
                i
            };
            let _ = input.set_attribute("name", f.name);
            let _ = input.set_attribute("autocomplete", "off");
            let _ = label.append_child(&input);
            let _ = self.panel.append_child(&label);
            if first_field.is_none() {
                first_field = input.dyn_into::<HtmlElement>().ok();
            }
        }
        let row = make("div", "actions", "")?;
        for (i, (action, label)) in content.buttons.iter().enumerate() {
            let b = make("button", if i == 0 { "primary" } else { "" }, label)?;
            let _ = b.set_attribute("type", "button");
            let _ = b.set_attribute("data-action", action);
            let _ = row.append_child(&b);
        }
        let _ = self.panel.append_child(&row);
        *self.handler.borrow_mut() = Some(on_action);
        let ours = self.focus_is_ours();
        if self.overlay.has_attribute("hidden") {
            // Where the focus was in Sotto, to give it back.
            let root = self.panel.get_root_node();
            let active = root
                .dyn_ref::<web_sys::ShadowRoot>()
                .and_then(|r| r.active_element());
            *self.before.borrow_mut() = active.and_then(|a| a.dyn_into().ok());
            self.set_behind_inert(true);
        }
        let _ = self.overlay.remove_attribute("hidden");
        // A dialog that opens by itself (a link request) does not take the keyboard from
        // someone typing in the page around Sotto.
        if let Some(first) = first_field
            .or_else(|| {
                row.first_element_child()
                    .and_then(|b| b.dyn_into::<HtmlElement>().ok())
            })
            .filter(|_| ours)
        {
            let _ = first.focus();
        }
        Ok(())
    }

    /// Fills the text field `name`: with text to copy (`readonly`), or with what the person
    /// typed before, to correct it.
    pub fn set_value(&self, name: &str, value: &str, readonly: bool) {
        if let Ok(Some(el)) = self.panel.query_selector(&format!("[name=\"{name}\"]")) {
            if let Some(t) = el.dyn_ref::<web_sys::HtmlTextAreaElement>() {
                t.set_value(value);
            } else if let Some(i) = el.dyn_ref::<web_sys::HtmlInputElement>() {
                i.set_value(value);
            }
            if readonly {
                let _ = el.set_attribute("readonly", "");
            }
        }
    }

    /// Says on the button for `action` how it went ("Copied").
    pub fn relabel(&self, action: &str, label: &str) {
        let button = self
            .panel
            .query_selector(&format!("[data-action=\"{action}\"]"));
        if let Ok(Some(b)) = button {
            b.set_text_content(Some(label));
        }
    }

    /// What was typed into the field `name` of the dialog on show.
    pub fn value(&self, name: &str) -> String {
        let Ok(Some(el)) = self.panel.query_selector(&format!("[name=\"{name}\"]")) else {
            return String::new();
        };
        if let Some(t) = el.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            return t.value();
        }
        el.dyn_ref::<web_sys::HtmlInputElement>()
            .map(|i| i.value())
            .unwrap_or_default()
    }

    pub fn hide(&self) {
        let shown = !self.overlay.has_attribute("hidden");
        let _ = self.overlay.set_attribute("hidden", "");
        self.panel.set_text_content(None);
        *self.handler.borrow_mut() = None;
        if shown {
            self.set_behind_inert(false);
            let before = self.before.take();
            if let Some(e) = before.filter(|e| e.is_connected() && self.focus_is_ours()) {
                let _ = e.focus();
            }
        }
    }

    /// Whether the keyboard is in Sotto or nowhere, rather than in the page around it.
    fn focus_is_ours(&self) -> bool {
        let root = self.panel.get_root_node();
        let host = root.dyn_ref::<web_sys::ShadowRoot>().map(|r| r.host());
        match self.doc.active_element() {
            None => true,
            Some(a) => Some(&a) == host.as_ref() || Some(a) == self.doc.body().map(Into::into),
        }
    }

    /// Makes the rest of Sotto (everything beside the overlay) unreachable, or reachable.
    fn set_behind_inert(&self, inert: bool) {
        let mut next = self
            .overlay
            .parent_element()
            .and_then(|p| p.first_element_child());
        while let Some(e) = next {
            if e != self.overlay {
                let _ = e.toggle_attribute_with_force("inert", inert);
            }
            next = e.next_element_sibling();
        }
    }
}
