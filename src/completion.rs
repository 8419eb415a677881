//! @-completion in the composer: typing `@` and the start of a member's tag or name offers
//! the open thread's other members (five at most) in a list above the composer. Arrow keys
//! choose, Enter or Tab put `@tag ` in place of what was typed, Escape closes the list, and
//! a click picks. Only tags are inserted, so a mention is what the receivers' devices find
//! (`mentions`), whatever the name shown.

use std::cell::{Cell, RefCell};
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlTextAreaElement, KeyboardEvent};

/// How many members the list offers at once.
const OFFERED: usize = 5;

pub struct Completion {
    list: Element,
    /// The composer, told which option is chosen (`aria-activedescendant`).
    composer: HtmlTextAreaElement,
    /// The open thread's other members: (tag, name shown).
    pub members: RefCell<Vec<(String, String)>>,
    /// The tags offered now, and which of them is chosen.
    offered: RefCell<Vec<String>>,
    chosen: Cell<usize>,
}

/// The `@word` being typed at the end of the draft, the caret there (where people type
/// names): the text before it and the word, lowercased, without its `@`.
fn typed(composer: &HtmlTextAreaElement) -> Option<(String, String)> {
    let at_end = composer.selection_start().ok().flatten() == Some(composer.text_length());
    let text = composer.value();
    let at = text.rfind('@').filter(|_| at_end)?;
    let word = &text[at + 1..];
    let starts_word = text[..at]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    let tag_like = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (starts_word && tag_like).then(|| (text[..at].to_owned(), word.to_ascii_lowercase()))
}

impl Completion {
    pub fn new(list: Element, composer: HtmlTextAreaElement) -> Completion {
        Completion {
            list,
            composer,
            members: Default::default(),
            offered: Default::default(),
            chosen: Cell::new(0),
        }
    }

    /// Offers the members that fit what is typed before the caret, or closes the list.
    pub fn update(&self, composer: &HtmlTextAreaElement) {
        let Some((_, word)) = typed(composer) else {
            return self.close();
        };
        let fits = |(tag, name): &(String, String)| {
            tag.to_ascii_lowercase().starts_with(&word)
                || name
                    .split_whitespace()
                    .any(|w| w.to_ascii_lowercase().starts_with(&word))
        };
        let members = self.members.borrow();
        let offered: Vec<&(String, String)> =
            members.iter().filter(|m| fits(m)).take(OFFERED).collect();
        self.list.set_text_content(None);
        let doc = self.list.owner_document();
        for (i, (tag, name)) in offered.iter().enumerate() {
            let Some(li) = doc.as_ref().and_then(|d| d.create_element("li").ok()) else {
                return;
            };
            li.set_text_content(Some(name));
            let _ = li.set_attribute("role", "option");
            let _ = li.set_attribute("data-i", &i.to_string());
            let _ = li.set_attribute("id", &format!("sotto-option-{i}"));
            if let Some(t) = doc.as_ref().and_then(|d| d.create_element("span").ok()) {
                t.set_class_name("tag");
                t.set_text_content(Some(&format!("@{tag}")));
                let _ = li.append_child(&t);
            }
            let _ = self.list.append_child(&li);
        }
        *self.offered.borrow_mut() = offered.iter().map(|(tag, _)| tag.clone()).collect();
        let _ = self
            .list
            .toggle_attribute_with_force("hidden", offered.is_empty());
        let expanded = if offered.is_empty() { "false" } else { "true" };
        let _ = self.composer.set_attribute("aria-expanded", expanded);
        self.choose(0);
    }

    fn choose(&self, i: usize) {
        self.chosen.set(i);
        let _ = match self.offered.borrow().is_empty() {
            true => self.composer.remove_attribute("aria-activedescendant"),
            false => self
                .composer
                .set_attribute("aria-activedescendant", &format!("sotto-option-{i}")),
        };
        let mut next = self.list.first_element_child();
        let mut n = 0;
        while let Some(li) = next {
            let _ = li.set_attribute("aria-selected", if n == i { "true" } else { "false" });
            n += 1;
            next = li.next_element_sibling();
        }
    }

    pub fn close(&self) {
        let _ = self.list.set_attribute("hidden", "");
        self.offered.borrow_mut().clear();
        let _ = self.composer.set_attribute("aria-expanded", "false");
        let _ = self.composer.remove_attribute("aria-activedescendant");
    }

    /// Puts the `i`th member offered in place of the `@word` typed, with a space after.
    pub fn pick(&self, i: usize, composer: &HtmlTextAreaElement) {
        let tag = self.offered.borrow().get(i).cloned();
        if let (Some(tag), Some((before, _))) = (tag, typed(composer)) {
            composer.set_value(&format!("{before}@{tag} "));
        }
        self.close();
    }

    /// A key pressed in the composer while the list shows: arrows choose, Enter or Tab
    /// pick, Escape closes. True when the key was the list's (the composer must not also
    /// act on it: Enter would send).
    pub fn key(&self, k: &KeyboardEvent, composer: &HtmlTextAreaElement) -> bool {
        let count = self.offered.borrow().len();
        let modified = k.shift_key() || k.ctrl_key() || k.alt_key() || k.meta_key();
        if count == 0 || self.list.has_attribute("hidden") || k.is_composing() || modified {
            return false;
        }
        let i = self.chosen.get();
        // "ask @support" typed out in full: Enter sends it, as without a list.
        let whole = typed(composer).is_some_and(|(_, w)| {
            self.offered
                .borrow()
                .get(i)
                .is_some_and(|t| t.to_ascii_lowercase() == w)
        });
        match k.key().as_str() {
            "Enter" if whole => return false,
            "ArrowDown" => self.choose((i + 1) % count),
            "ArrowUp" => self.choose((i + count - 1) % count),
            "Enter" | "Tab" => self.pick(i, composer),
            "Escape" => self.close(),
            _ => return false,
        }
        true
    }

    /// The member a click (or touch) in the list landed on.
    pub fn clicked(target: Option<web_sys::EventTarget>) -> Option<usize> {
        let e: Element = target?.dyn_into().ok()?;
        e.closest("[data-i]")
            .ok()??
            .get_attribute("data-i")?
            .parse()
            .ok()
    }
}
