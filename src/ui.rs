//! The UI, mounted in an open shadow root of the host element so that the page's styles and
//! Sotto's never mix. User text only ever reaches the DOM through `textContent`.

use crate::dialog::Dialog;
use crate::error::{js_failure, ClientResult};
use crate::model::{display_name, Message, Status, Thread};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    Document, Element, HtmlInputElement, HtmlTextAreaElement, KeyboardEvent, ShadowRoot,
    ShadowRootInit, ShadowRootMode,
};

/// `src/ui.css`, minified by `build.rs`.
const STYLE: &str = include_str!(concat!(env!("OUT_DIR"), "/ui.css"));

/// The UI's frame, filled in by `Ui::mount`. Static markup only: user text never goes
/// through HTML. The toolbar's reactions are the ones offered (any emoji can come from
/// the page API).
const TEMPLATE: &str = concat!(
    r#"<header class="header" part="header" role="banner"><button class="nav-toggle" type="button" aria-label="Show or hide the threads" aria-expanded="true">☰</button>"#,
    r#"<span class="brand">Sotto</span><span class="who"></span><span class="status" role="status">Connecting…</span>"#,
    r#"<button class="header-action" type="button" aria-label="Back up your key with a passphrase">Key backup</button></header>"#,
    r#"<div class="body"><nav class="nav" part="nav" aria-label="Threads"><form class="new-thread" novalidate>"#,
    r#"<input placeholder="@someone + @group" aria-label="New thread: who to talk to" autocomplete="off"><button>Start</button></form>"#,
    r#"<div class="find"><input type="search" placeholder="Search messages" aria-label="Search messages" autocomplete="off"></div>"#,
    r#"<ul class="threads" role="list"></ul></nav><main class="thread" part="thread"><div class="thread-header"><div class="title-row">"#,
    r#"<button class="back" type="button" aria-label="Back to the threads">‹ Back</button><h2 class="thread-title">No thread open</h2><button class="header-action rename" type="button" aria-label="Rename this thread">Rename</button>"#,
    r#"<button class="header-action topic" type="button" aria-label="New topic with the same people">New topic</button>"#,
    r#"<button class="header-action verify" type="button" aria-label="Compare safety numbers with the members">Verify</button></div>"#,
    r#"<p class="members"></p><p class="warn" role="alert" hidden></p></div>"#,
    r#"<ol class="messages" part="messages" aria-live="polite" aria-label="Messages"></ol><button class="pill" type="button" hidden>New messages ↓</button>"#,
    r#"<ul class="notes" part="notes" aria-live="polite" aria-label="Notes"></ul>"#,
    r#"<p class="typing"></p><p class="notice" role="alert"></p>"#,
    r#"<div class="context" hidden><span></span><button type="button" aria-label="Cancel">✕</button></div>"#,
    r#"<ul class="tray" part="tray" aria-label="Files to send" hidden></ul><progress class="sending" aria-label="Sending files"></progress>"#,
    r#"<form class="composer" part="composer"><ul class="suggest" id="sotto-suggest" role="listbox" aria-label="People to mention" hidden></ul>"#,
    r#"<button class="attach" type="button" aria-label="Attach files">Attach</button>"#,
    r#"<input type="file" multiple hidden aria-label="Files to attach"><textarea rows="1" placeholder="Write a message" aria-label="Message" aria-autocomplete="list" aria-controls="sotto-suggest" aria-expanded="false"></textarea>"#,
    r#"<button type="submit">Send</button></form></main></div>"#,
    r#"<div class="tools" role="toolbar" aria-label="Message actions">"#,
    r#"<button data-act="react" data-emoji="👍" aria-label="React 👍">👍</button><button data-act="react" data-emoji="❤️" aria-label="React ❤️">❤️</button>"#,
    r#"<button data-act="react" data-emoji="😂" aria-label="React 😂">😂</button><button data-act="react" data-emoji="😮" aria-label="React 😮">😮</button>"#,
    r#"<button data-act="reply">Reply</button><button data-act="edit">Edit</button><button data-act="delete">Delete</button></div>"#,
);

/// Sends (text, the message replied to, files).
pub type SendAction = Rc<dyn Fn(String, Option<String>, Vec<web_sys::File>)>;

/// What the UI asks the client to do.
pub struct UiActions {
    /// A message typed in the composer, the message it replies to, and the files in the
    /// tray that go with it (the client answers with `Ui::files_sent` when there are any).
    pub send: SendAction,
    /// A change to a message: (`edit`, `delete` or `react`, message ID, new text or emoji).
    pub change: Rc<dyn Fn(String, String, String)>,
    pub open: Rc<dyn Fn(String)>,
    /// What the search field holds now ("" lists the threads again).
    pub search: Rc<dyn Fn(String)>,
    /// The composer's draft became non-empty or grew (`true`), or was emptied (`false`).
    pub typing: Rc<dyn Fn(bool)>,
    pub new_thread: Rc<dyn Fn(String)>,
    /// An attachment clicked: (message ID, index).
    pub download: Rc<dyn Fn(String, usize)>,
    /// "Verify" in the thread header: compare safety numbers with the open thread's members.
    pub verify: Rc<dyn Fn()>,
    /// "Rename" in the thread header: a title for the open thread.
    pub rename: Rc<dyn Fn()>,
    /// "New topic" in the thread header: another thread with the same people.
    pub new_topic: Rc<dyn Fn()>,
    /// Draw the open thread again: the reader scrolled up to the oldest message drawn, or
    /// asked for one not drawn (see `Window`).
    pub redraw: Rc<dyn Fn()>,
    /// "Key backup" in the header.
    pub backup: Rc<dyn Fn()>,
    /// A note at the end of the thread dismissed: the user it is about, and whether it
    /// told of a changed key (else of a new device).
    pub dismiss: Rc<dyn Fn(String, bool)>,
}

/// How the page asked the UI to look.
#[derive(Debug, Clone)]
pub struct UiConfig {
    pub show_nav: bool,
    pub show_header: bool,
    pub show_thread_header: bool,
    /// The name in the header instead of "Sotto" (the site's own, e.g. "Acme Support").
    pub brand: Option<String>,
    /// `light`, `dark` or `auto` (follows the system).
    pub theme: String,
    /// The language tag that dates and times are written in (`locale`; the browser's own
    /// by default). The words are translated by the JavaScript shell (`js/i18n.js`).
    pub locale: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            show_nav: true,
            show_header: true,
            show_thread_header: true,
            brand: None,
            theme: "light".into(),
            locale: "default".into(),
        }
    }
}

/// Collapses (`Some(true)`), expands (`Some(false)`) or toggles the thread list; returns
/// whether it is now collapsed.
fn toggle_nav(app: &Element, toggle: &Element, collapse: Option<bool>) -> bool {
    let list = app.class_list();
    let collapsed = collapse.unwrap_or(!list.contains("nav-collapsed"));
    let _ = list.toggle_with_force("nav-collapsed", collapsed);
    attr(
        toggle,
        "aria-expanded",
        if collapsed { "false" } else { "true" },
    );
    collapsed
}

pub struct Ui {
    doc: Document,
    /// See `UiConfig::locale`.
    locale: String,
    root: ShadowRoot,
    status: Element,
    who: Element,
    /// The thread list, and the field where a new thread's members are typed.
    threads: Option<(Element, HtmlInputElement)>,
    title: Element,
    members: Element,
    warning: Element,
    /// Quiet notes at the end of the timeline: a member's key changed, or a member has a
    /// new device. Each can be dismissed.
    notes: Element,
    /// What `notes` shows, so that a redraw that changes nothing is not announced again.
    notes_shown: RefCell<String>,
    messages: Element,
    /// What the message list shows, one entry per message in order: redrawing starts at
    /// the first that changed, so a new message is one append, not a rebuilt list (and the
    /// live region announces only it).
    drawn: std::cell::RefCell<Vec<Drawn>>,
    /// Which messages `drawn` holds: from `window.from` on.
    window: Rc<Window>,
    /// @-completion in the composer, offering the open thread's members.
    completion: Rc<crate::completion::Completion>,
    composer: HtmlTextAreaElement,
    /// Files picked and not yet sent, above the composer (see `Tray`).
    tray: Rc<Tray>,
    /// What was written and not sent in each thread left, by thread ID: the composer shows
    /// a thread's own draft when it opens, never another's.
    drafts: RefCell<Vec<(String, String)>>,
    /// "New messages ↓", shown while a reader who scrolled up has new messages below.
    pill: Element,
    /// What the composer is doing besides writing a new message: editing (`true`) or
    /// replying to (`false`) a message, shown in the bar above it.
    mode: Rc<RefCell<Option<(bool, String)>>>,
    context: Element,
    notice: Element,
    /// "Bob is typing…" under the messages.
    typing: Element,
    pub dialog: Dialog,
    app: Element,
    _listeners: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

fn el(doc: &Document, tag: &str, class: &str) -> ClientResult<Element> {
    let e = doc.create_element(tag).map_err(|e| js_failure("ui", e))?;
    if !class.is_empty() {
        e.set_class_name(class);
    }
    Ok(e)
}

/// Calls `f` on every `event` of `target`; keep the returned closure alive with the UI.
fn on(
    target: &Element,
    event: &str,
    f: Rc<dyn Fn()>,
) -> ClientResult<Closure<dyn FnMut(web_sys::Event)>> {
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| f());
    target
        .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref())
        .map_err(|e| js_failure("ui", e))?;
    Ok(closure)
}

/// Scrolls the message `id` of the drawn list into view and focuses it, if it is there.
fn reveal(list: &Element, id: &str) -> bool {
    let mut next = list.first_element_child();
    while let Some(m) = next {
        if m.get_attribute("data-message").as_deref() == Some(id) {
            m.scroll_into_view();
            if let Some(m) = m.dyn_ref::<web_sys::HtmlElement>() {
                let _ = m.focus();
            }
            return true;
        }
        next = m.next_element_sibling();
    }
    false
}

/// The image types drawn in the thread, up to 5 MB: the JavaScript shell (js/previews.js)
/// fetches each as it scrolls into view and shows it as one of these types, whatever its
/// bytes (the type is the sender's claim). Never SVG: an image that is a document.
const PREVIEWED: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file as the thread and the tray show it: a button reading "name (size)", labelled
/// `action` and the name, with an empty `img` first for an image the shell may draw
/// (js/previews.js: PNG, JPEG, GIF or WebP up to 5 MB).
fn file_button(
    doc: &Document,
    action: &str,
    name: &str,
    size: u64,
    mime: &str,
) -> ClientResult<(Element, Option<Element>)> {
    let b = text_el(
        doc,
        "button",
        "",
        &format!("{name} ({})", format_size(size)),
    )?;
    attr(&b, "type", "button");
    attr(&b, "aria-label", &[action, name].concat());
    let mut img = None;
    if PREVIEWED.contains(&mime) && size <= 5_000_000 {
        let i = el(doc, "img", "")?;
        attr(&i, "alt", "");
        let _ = b.insert_before(&i, b.first_child().as_ref());
        img = Some(i);
    }
    Ok((b, img))
}

/// Files picked with Attach, shown above the composer until they go with the next message
/// sent: a thumbnail of each image (from a `blob:` URL, given back when the file goes, and
/// shown by the JavaScript shell only if its header is an image of a sane size), its name
/// and size, and a button that takes it out. While they upload, the tray is busy.
struct Tray {
    list: Element,
    /// Attach, which waits while files upload: one set at a time.
    attach: Element,
    files: RefCell<Vec<(web_sys::File, String)>>,
    /// The person left the thread (or signed out) while its files uploaded: whatever
    /// happens to them, they are not offered again in another thread.
    left: std::cell::Cell<bool>,
}

impl Drop for Tray {
    fn drop(&mut self) {
        self.left.set(false);
        let _ = self.list.remove_attribute("aria-busy");
        self.remove(None);
    }
}

impl Tray {
    fn add(&self, picked: impl Iterator<Item = web_sys::File>) {
        for f in picked {
            // Used only for an image's thumbnail, but cheap to hold for any file.
            let url = web_sys::Url::create_object_url_with_blob(&f).unwrap_or_default();
            self.files.borrow_mut().push((f, url));
        }
        self.draw();
    }

    /// Takes out file `index`, or every file; nothing while they are being sent.
    fn remove(&self, index: Option<usize>) {
        if self.busy() {
            return;
        }
        let mut files = self.files.borrow_mut();
        let mut i = 0;
        files.retain(|(_, url)| {
            let keep = index.is_some_and(|n| n != i);
            i += 1;
            if !keep {
                let _ = web_sys::Url::revoke_object_url(url);
            }
            keep
        });
        drop(files);
        self.draw();
    }

    fn busy(&self) -> bool {
        self.list.has_attribute("aria-busy")
    }

    /// The files to send now, the tray busy until `Ui::files_sent`; none while it is busy.
    fn sending(&self) -> Vec<web_sys::File> {
        if self.busy() {
            return Vec::new();
        }
        let files: Vec<_> = self.files.borrow().iter().map(|(f, _)| f.clone()).collect();
        if !files.is_empty() {
            attr(&self.list, "aria-busy", "true");
            attr(&self.attach, "disabled", "");
            self.left.set(false);
        }
        files
    }

    /// The thread is left: its files go (or, while they upload, go once that ends).
    fn leave(&self) {
        self.left.set(true);
        self.remove(None);
        attr(&self.list, "hidden", "");
    }

    fn draw(&self) {
        let list = &self.list;
        list.set_text_content(None);
        let files = self.files.borrow();
        let _ = list.toggle_attribute_with_force("hidden", files.is_empty());
        let Some(doc) = list.owner_document() else {
            return;
        };
        for (i, (f, url)) in files.iter().enumerate() {
            let (Ok(item), Ok((b, img))) = (
                el(&doc, "li", ""),
                file_button(&doc, "Remove ", &f.name(), f.size() as u64, &f.type_()),
            ) else {
                return;
            };
            // The shell shows it once its header is an image's (js/previews.js).
            if let Some(img) = img {
                attr(&img, "data-src", url);
            }
            attr(&b, "data-remove", &i.to_string());
            append(&item, &b);
            append(list, &item);
        }
    }
}

/// How many messages a thread opens with, and how many more each scroll to the top draws:
/// a thread of 10,000 messages opens as fast as one of 100.
const PAGE: usize = 100;

/// Which of the open thread's messages are drawn: those from `from` on, and among them
/// `want`, a message asked for (a search result or a quote clicked) once it is drawn.
#[derive(Default)]
struct Window {
    from: std::cell::Cell<usize>,
    /// The `from` that what is on screen was drawn with.
    drawn_from: std::cell::Cell<usize>,
    /// The first message drawn, by ID: found again at the next drawing, however many
    /// messages before it went (disappearing, or deleted on this device).
    first: RefCell<Option<String>>,
    /// Pages asked for above it (the reader scrolled to the top).
    more: std::cell::Cell<usize>,
    want: RefCell<Option<String>>,
}

/// Shows the message `id`: drawn already, or once the thread is drawn again from it.
fn show_message(list: &Element, window: &Window, redraw: &dyn Fn(), id: &str) {
    if !reveal(list, id) {
        *window.want.borrow_mut() = Some(id.to_owned());
        redraw();
        reveal(list, id);
    }
}

fn attr(e: &Element, name: &str, value: &str) {
    let _ = e.set_attribute(name, value);
}

fn append(parent: &impl AsRef<web_sys::Node>, child: &Element) {
    let _ = parent.as_ref().append_child(child);
}

fn text_el(doc: &Document, tag: &str, class: &str, text: &str) -> ClientResult<Element> {
    let e = el(doc, tag, class)?;
    e.set_text_content(Some(text));
    Ok(e)
}

/// `ms` as the reader's locale writes it with these `Intl.DateTimeFormat` options.
fn format_date(locale: &str, ms: i64, options: &[(&str, &str)]) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    let opts = js_sys::Object::new();
    for (k, v) in options {
        let _ = js_sys::Reflect::set(&opts, &(*k).into(), &(*v).into());
    }
    d.to_locale_string(locale, &opts).into()
}

/// "14:05" or "2:05 PM".
fn format_time(locale: &str, ms: i64) -> String {
    format_date(locale, ms, &[("hour", "2-digit"), ("minute", "2-digit")])
}

/// "Saturday, November 21": the day a message was sent, in the reader's locale.
fn format_day(locale: &str, ms: i64) -> String {
    format_date(
        locale,
        ms,
        &[("weekday", "long"), ("month", "long"), ("day", "numeric")],
    )
}

/// "812 B", "14 KB", "3.2 MB".
pub fn format_size(bytes: u64) -> String {
    match bytes {
        b if b < 1000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{} KB", b / 1000),
        // In tenths, rounded, without float formatting (which costs kilobytes of wasm).
        b => {
            let tenths = (b + 50_000) / 100_000;
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    }
}

/// "30 s", "5 min", "2 h", "3 d".
fn format_duration(seconds: u32) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

impl Ui {
    pub fn mount(host: &Element, config: &UiConfig, actions: UiActions) -> ClientResult<Ui> {
        let (show_nav, show_header) = (config.show_nav, config.show_header);
        let doc = host.owner_document().ok_or_else(|| {
            crate::error::ClientError::new("ui", "the element is not in a document")
        })?;
        let root = match host.shadow_root() {
            Some(r) => {
                r.set_inner_html("");
                r
            }
            None => host
                .attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))
                .map_err(|e| js_failure("ui", e))?,
        };
        let style = text_el(&doc, "style", "", STYLE)?;
        append(&root, &style);
        let app = el(&doc, "div", "sotto")?;
        // On the host, so the page's own rules for its element still win over the theme.
        attr(host, "data-sotto-theme", &config.theme);
        append(&root, &app);
        let mut listeners = Vec::new();

        // The static frame is one template (no user text in it, ever); what varies is
        // filled in through `textContent` and attributes. One string costs the wasm far less
        // than building each element call by call.
        app.set_inner_html(TEMPLATE);
        let find = |selector: &str| -> ClientResult<Element> {
            app.query_selector(selector).ok().flatten().ok_or_else(|| {
                crate::error::ClientError::new("ui", "the UI's template lacks an element")
            })
        };
        let window: Rc<Window> = Rc::default();
        let header = find("header")?;
        let toggle = find(".nav-toggle")?;
        if show_nav {
            // Collapses the thread list (navPanelToggle does the same from the page).
            let (app2, toggle2) = (app.clone(), toggle.clone());
            let collapse = Rc::new(move || {
                toggle_nav(&app2, &toggle2, None);
            });
            listeners.push(on(&toggle, "click", collapse)?);
        } else {
            toggle.remove();
            find("nav")?.remove();
        }
        if let Some(brand) = &config.brand {
            find(".brand")?.set_text_content(Some(brand));
        }
        let who = find(".who")?;
        let status = find(".status")?;
        listeners.push(on(
            &find("header .header-action")?,
            "click",
            actions.backup.clone(),
        )?);
        if !show_header {
            attr(&header, "hidden", "");
        }

        let threads = if show_nav {
            let form = find(".new-thread")?;
            let input: HtmlInputElement = find(".new-thread input")?.unchecked_into();
            let list = find(".threads")?;
            let new_thread = actions.new_thread.clone();
            let input2 = input.clone();
            // The field keeps what was typed until the thread is made (`new_thread_done`).
            let on_submit = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                e.prevent_default();
                input2.set_custom_validity("");
                let expr = input2.value().trim().to_owned();
                // Read-only while the thread is made: a second Enter makes no second thread.
                if !expr.is_empty() && !input2.read_only() {
                    input2.set_read_only(true);
                    new_thread(expr);
                }
            });
            form.add_event_listener_with_callback("submit", on_submit.as_ref().unchecked_ref())
                .map_err(|e| js_failure("ui", e))?;
            listeners.push(on_submit);

            let open = actions.open.clone();
            let drawn = find(".messages")?;
            let window = window.clone();
            let on_click = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
                if let Some(item) = target.and_then(|t| t.closest("[data-thread]").ok().flatten()) {
                    // A search result: its thread is drawn with the message found, shown.
                    let found = item.get_attribute("data-found");
                    window.want.replace(found.clone());
                    if let Some(id) = item.get_attribute("data-thread") {
                        open(id);
                    }
                    if let Some(id) = found {
                        reveal(&drawn, &id);
                    }
                }
            });
            list.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref())
                .map_err(|e| js_failure("ui", e))?;
            listeners.push(on_click);
            let (field, search): (HtmlInputElement, _) = (
                find(".find input")?.unchecked_into(),
                actions.search.clone(),
            );
            let field2 = field.clone();
            listeners.push(on(
                &field,
                "input",
                Rc::new(move || search(field2.value())),
            )?);
            Some((list, input))
        } else {
            None
        };

        if !config.show_thread_header {
            attr(&find(".thread-header")?, "hidden", "");
        }
        // On a phone, Back shows the list again (the thread stays open behind it).
        let app2 = app.clone();
        let back = Rc::new(move || {
            let _ = app2.class_list().remove_1("show-thread");
        });
        listeners.push(on(&find(".back")?, "click", back)?);
        let title = find(".thread-title")?;
        let members = find(".members")?;
        // Shown while a thread is open that one is still in (ui.css).
        listeners.push(on(&find(".verify")?, "click", actions.verify.clone())?);
        listeners.push(on(&find(".rename")?, "click", actions.rename.clone())?);
        listeners.push(on(&find(".topic")?, "click", actions.new_topic.clone())?);
        let warning = find(".warn")?;
        let messages = find(".messages")?;
        let notice = find(".notice")?;
        let composer_form = find(".composer")?;
        let composer: HtmlTextAreaElement = find("textarea")?.unchecked_into();
        // The attach button opens a hidden file picker.
        let picker: HtmlInputElement = find("[type=file]")?.unchecked_into();
        let picker2 = picker.clone();
        listeners.push(on(
            &find(".attach")?,
            "click",
            Rc::new(move || picker2.click()),
        )?);
        // Picked files wait in the tray, to go with the next message sent.
        let tray = Rc::new(Tray {
            list: find(".tray")?,
            attach: find(".attach")?,
            files: Default::default(),
            left: Default::default(),
        });
        let (picker3, tray2, focus) = (picker.clone(), tray.clone(), composer.clone());
        let on_pick = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let Some(list) = picker3.files() else { return };
            tray2.add((0..list.length()).filter_map(|i| list.get(i)));
            picker3.set_value("");
            let _ = focus.focus();
        });
        picker
            .add_event_listener_with_callback("change", on_pick.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_pick);
        let (tray2, focus) = (tray.clone(), composer.clone());
        let on_remove = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
            let b = target.and_then(|t| t.closest("[data-remove]").ok().flatten());
            if let Some(i) = b.and_then(|b| b.get_attribute("data-remove")?.parse().ok()) {
                tray2.remove(Some(i));
                // Its button is gone: the focus goes on to the message.
                let _ = focus.focus();
            }
        });
        tray.list
            .add_event_listener_with_callback("click", on_remove.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_remove);
        // Above the composer while it edits or replies: what, and a way out.
        let context = find(".context")?;
        let mode: Rc<RefCell<Option<(bool, String)>>> = Rc::default();
        let end_mode = {
            let (mode, context, composer) = (mode.clone(), context.clone(), composer.clone());
            Rc::new(move || {
                if let Some((editing, _)) = mode.borrow_mut().take() {
                    if editing {
                        composer.set_value("");
                    }
                }
                attr(&context, "hidden", "");
            })
        };
        listeners.push(on(&find(".context button")?, "click", end_mode.clone())?);

        // One toolbar for the message under the pointer or the focus: reactions, reply, and
        // for one's own messages edit and delete. It waits outside the document until then.
        let tools = find(".tools")?;
        let own_only = [find("[data-act=edit]")?, find("[data-act=delete]")?];
        tools.remove();
        let on_hover = {
            let tools = tools.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
                let Some(item) = target.and_then(|t| t.closest("li.msg").ok().flatten()) else {
                    return;
                };
                if item.class_list().contains("gone")
                    || tools.parent_element() == Some(item.clone())
                {
                    return;
                }
                let own = item.class_list().contains("out");
                for b in &own_only {
                    let _ = b.toggle_attribute_with_force("hidden", !own);
                }
                append(&item, &tools);
            })
        };
        for event in ["mouseover", "focusin"] {
            messages
                .add_event_listener_with_callback(event, on_hover.as_ref().unchecked_ref())
                .map_err(|e| js_failure("ui", e))?;
        }
        listeners.push(on_hover);

        let on_message_click = {
            let (download, change) = (actions.download.clone(), actions.change.clone());
            let (mode, context, composer, list) = (
                mode.clone(),
                context.clone(),
                composer.clone(),
                messages.clone(),
            );
            let (window, redraw) = (window.clone(), actions.redraw.clone());
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
                    return;
                };
                let data = |e: &Element, name: &str| e.get_attribute(name).unwrap_or_default();
                if let Some(b) = target.closest("[data-attachment]").ok().flatten() {
                    if let Ok(index) = data(&b, "data-attachment").parse() {
                        download(data(&b, "data-message-id"), index);
                    }
                    return;
                }
                let Some(b) = target.closest("[data-act]").ok().flatten() else {
                    return;
                };
                let Some(item) = b.closest("[data-message]").ok().flatten() else {
                    return;
                };
                let id = data(&item, "data-message");
                let act = data(&b, "data-act");
                let text_of = |item: &Element, class: &str| {
                    item.query_selector(class)
                        .ok()
                        .flatten()
                        .and_then(|t| t.text_content())
                        .unwrap_or_default()
                };
                match act.as_str() {
                    // The replied-to message, if it is on screen.
                    "goto" => show_message(&list, &window, &*redraw, &data(&b, "data-goto")),
                    "reply" | "edit" => {
                        let editing = act == "edit";
                        let text = text_of(&item, ".text");
                        let about = match editing {
                            true => "Editing your message".to_owned(),
                            false => {
                                let quote: String = text.chars().take(80).collect();
                                format!("Replying to {}: {quote}", text_of(&item, ".sender"))
                            }
                        };
                        if let Some(label) = context.first_element_child() {
                            label.set_text_content(Some(&about));
                        }
                        let _ = context.remove_attribute("hidden");
                        if editing {
                            composer.set_value(&text);
                        }
                        *mode.borrow_mut() = Some((editing, id));
                        let _ = composer.focus();
                    }
                    _ => change(act, id, data(&b, "data-emoji")),
                }
            })
        };
        messages
            .add_event_listener_with_callback("click", on_message_click.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_message_click);

        let completion = Rc::new(crate::completion::Completion::new(
            find(".suggest")?,
            composer.clone(),
        ));
        let submit = {
            let (composer, mode, end_mode) = (composer.clone(), mode.clone(), end_mode.clone());
            let (sent, tray) = (completion.clone(), tray.clone());
            let (send, change) = (actions.send.clone(), actions.change.clone());
            Rc::new(move || {
                let text = composer.value();
                let editing = mode.borrow().as_ref().is_some_and(|(editing, _)| *editing);
                // The tray's files go with a new message or a reply (not an edit), once.
                let files = match editing {
                    true => Vec::new(),
                    false => tray.sending(),
                };
                if text.trim().is_empty() && files.is_empty() {
                    return;
                }
                composer.set_value("");
                sent.close();
                let doing = mode.borrow_mut().take();
                end_mode();
                match doing {
                    Some((true, id)) => change("edit".into(), id, text),
                    Some((false, id)) => send(text, Some(id), files),
                    None => send(text, None, files),
                }
            })
        };
        let on_send = {
            let submit = submit.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                e.prevent_default();
                submit();
            })
        };
        composer_form
            .add_event_listener_with_callback("submit", on_send.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_send);
        // Enter sends; Shift+Enter makes a new line; Escape stops editing or replying.
        let key_mode = mode.clone();
        let (keys, key_composer) = (completion.clone(), composer.clone());
        let on_key = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            if let Some(k) = e.dyn_ref::<KeyboardEvent>() {
                // The @-list, while it shows, has the arrows, Enter, Tab and Escape.
                if keys.key(k, &key_composer) {
                    e.prevent_default();
                    e.stop_propagation();
                } else if k.key() == "Enter" && !k.shift_key() && !k.is_composing() {
                    e.prevent_default();
                    submit();
                } else if k.key() == "Escape" && key_mode.borrow().is_some() {
                    // Handled: a widget around Sotto does not also close on it.
                    e.prevent_default();
                    end_mode();
                }
            }
        });
        composer
            .add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_key);
        // What is typed before the caret may be an @ to complete; leaving closes the list,
        // and a press in it picks (before the composer loses the focus).
        let (offer, offer_composer) = (completion.clone(), composer.clone());
        listeners.push(on(
            &composer,
            "input",
            Rc::new(move || offer.update(&offer_composer)),
        )?);
        let closing = completion.clone();
        listeners.push(on(&composer, "blur", Rc::new(move || closing.close()))?);
        let (picking, pick_composer) = (completion.clone(), composer.clone());
        let on_pick = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            e.prevent_default();
            if let Some(i) = crate::completion::Completion::clicked(e.target()) {
                picking.pick(i, &pick_composer);
            }
        });
        find(".suggest")?
            .add_event_listener_with_callback("mousedown", on_pick.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_pick);
        // Typing in a new message (not editing an old one) tells the members.
        let (typing, typing_mode, draft) = (actions.typing.clone(), mode.clone(), composer.clone());
        listeners.push(on(
            &composer,
            "input",
            Rc::new(move || {
                if !typing_mode
                    .borrow()
                    .as_ref()
                    .is_some_and(|(editing, _)| *editing)
                {
                    typing(!draft.value().trim().is_empty());
                }
            }),
        )?);

        // The pill takes the reader down; reaching the bottom any way hides it.
        let pill = find(".pill")?;
        let (list, pill2) = (messages.clone(), pill.clone());
        listeners.push(on(
            &pill,
            "click",
            Rc::new(move || {
                list.set_scroll_top(list.scroll_height());
                attr(&pill2, "hidden", "");
            }),
        )?);
        let (list, pill2) = (messages.clone(), pill.clone());
        let (window2, redraw) = (window.clone(), actions.redraw.clone());
        listeners.push(on(
            &messages,
            "scroll",
            Rc::new(move || {
                if at_bottom(&list) {
                    attr(&pill2, "hidden", "");
                }
                // At the top of what is drawn: the page before it.
                if list.scroll_top() < 60 && window2.from.get() > 0 {
                    window2.more.set(1);
                    redraw();
                }
            }),
        )?);

        // A note's buttons: Verify opens the safety numbers, ✕ dismisses it.
        let notes = find(".notes")?;
        let (verify, dismiss) = (actions.verify.clone(), actions.dismiss.clone());
        let on_note = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
            let Some(b) = target.and_then(|t| t.closest("button").ok().flatten()) else {
                return;
            };
            match b.get_attribute("data-user") {
                Some(user) => dismiss(user, b.has_attribute("data-key")),
                None => verify(),
            }
        });
        notes
            .add_event_listener_with_callback("click", on_note.as_ref().unchecked_ref())
            .map_err(|e| js_failure("ui", e))?;
        listeners.push(on_note);
        let typing = find(".typing")?;
        let dialog = Dialog::mount(&doc, &app)?;
        Ok(Ui {
            locale: config.locale.clone(),
            app,
            dialog,
            doc,
            root,
            status,
            who,
            threads,
            title,
            members,
            warning,
            notes,
            notes_shown: Default::default(),
            messages,
            drawn: Default::default(),
            window,
            completion,
            composer,
            tray,
            drafts: Default::default(),
            pill,
            mode,
            context,
            notice,
            typing,
            _listeners: listeners,
        })
    }

    /// Shows `notes` at the end of the timeline: (user ID, text, whether about a key), with
    /// Verify by a key's when `verify`. Drawn again only when they changed, so the live region announces a
    /// note once.
    fn show_notes(&self, notes: &[(&str, String, bool)], verify: bool) {
        // Each part with its length: no name can make two sets of notes read the same.
        let mut shown = String::from(if verify { "v" } else { "" });
        for (user, text, key) in notes {
            shown += &format!("{} {user}{} {text}{key}", user.len(), text.len());
        }
        if self.notes_shown.replace(shown.clone()) == shown {
            return;
        }
        self.notes.set_text_content(None);
        for (user, text, key) in notes {
            let Ok(note) = el(&self.doc, "li", "note") else {
                return;
            };
            note.set_inner_html(
                &[
                    "<span></span>",
                    if verify && *key {
                        "<button type=button>Verify</button>"
                    } else {
                        ""
                    },
                    // `data-key`: a key's note, which the person acknowledges having seen.
                    "<button type=button aria-label=\"Dismiss this note\"",
                    if *key { " data-key" } else { "" },
                    ">✕</button>",
                ]
                .concat(),
            );
            if let (Some(span), Some(x)) = (note.first_element_child(), note.last_element_child()) {
                span.set_text_content(Some(text));
                attr(&x, "data-user", user);
            }
            append(&self.notes, &note);
        }
    }

    /// The tray's files were sent (they go) or not (they stay, to be sent again).
    pub fn files_sent(&self, sent: bool) {
        let tray = &self.tray;
        let _ = tray.list.remove_attribute("aria-busy");
        let _ = tray.attach.remove_attribute("disabled");
        match sent || tray.left.get() {
            true => tray.remove(None),
            false => tray.draw(),
        }
    }

    /// `navPanelToggle(collapse?)`; returns whether the list is now collapsed.
    pub fn toggle_nav(&self, collapse: Option<bool>) -> bool {
        match self.root.query_selector(".nav-toggle").ok().flatten() {
            Some(toggle) => toggle_nav(&self.app, &toggle, collapse),
            None => false,
        }
    }

    /// Who is signed in. A visitor (`visitor`) sees none of what only members of the site
    /// use: key backup, safety numbers, starting threads with people.
    pub fn set_user(&self, name: &str, visitor: bool) {
        self.who.set_text_content(Some(name));
        let _ = self.app.class_list().toggle_with_force("visitor", visitor);
    }

    /// A status in words, e.g. "Session expired".
    pub fn set_status(&self, text: &str) {
        self.status.set_text_content(Some(text));
        attr(&self.status, "data-connected", "false");
    }

    pub fn set_connected(&self, connected: bool) {
        self.status.set_text_content(Some(if connected {
            "Connected"
        } else {
            "Reconnecting…"
        }));
        attr(
            &self.status,
            "data-connected",
            if connected { "true" } else { "false" },
        );
    }

    /// Shows a problem to the user (as text), or clears it with `None`.
    /// A new thread was made (the field empties) or not: the reason shows by the field,
    /// which keeps what was typed.
    pub fn new_thread_done(&self, error: Option<&str>) {
        if let Some((_, input)) = &self.threads {
            input.set_read_only(false);
            input.set_custom_validity(error.unwrap_or_default());
            match error {
                Some(_) => {
                    input.report_validity();
                }
                None => input.set_value(""),
            }
        }
    }

    pub fn notice(&self, message: Option<&str>) {
        self.notice.set_text_content(message);
    }

    /// Lists the threads, or with `found` (a search), the messages found, each with its
    /// thread.
    pub fn render_threads(
        &self,
        threads: &[Thread],
        open: Option<&str>,
        own_id: &str,
        found: Option<&[(&Thread, &Message)]>,
    ) -> ClientResult<()> {
        let Some((list, _)) = &self.threads else {
            return Ok(());
        };
        list.set_text_content(None);
        // Each entry: a thread with its last message, or (a search) with a message found.
        let entries: Vec<(&Thread, Option<&Message>)> = match found {
            Some(found) => found.iter().map(|(t, m)| (*t, Some(*m))).collect(),
            None => threads
                .iter()
                .filter(|t| !t.archived)
                .map(|t| (t, t.messages.last()))
                .collect(),
        };
        if found.is_some_and(|f| f.is_empty()) {
            append(
                list,
                &text_el(&self.doc, "li", "none", "No messages found")?,
            );
        }
        let now = js_sys::Date::now() as i64;
        for (t, m) in entries {
            let item = el(&self.doc, "li", "")?;
            let button = el(&self.doc, "button", "thread-item")?;
            attr(&button, "type", "button");
            attr(&button, "data-thread", &t.id);
            if open == Some(t.id.as_str()) && found.is_none() {
                attr(&button, "aria-current", "true");
            }
            let top = el(&self.doc, "span", "row")?;
            append(&top, &text_el(&self.doc, "span", "name", &t.title(own_id))?);
            if t.unread > 0 && found.is_none() {
                let badge = text_el(&self.doc, "span", "unread", &t.unread.to_string())?;
                attr(&badge, "aria-label", &format!("{} unread", t.unread));
                append(&top, &badge);
            }
            append(&button, &top);
            if let Some(m) = m {
                let row = el(&self.doc, "span", "row last")?;
                match found {
                    // A result: the day by the title (it may be long ago), and who said
                    // what across the whole width.
                    Some(_) => {
                        attr(&button, "data-found", &m.id);
                        append(
                            &top,
                            &text_el(
                                &self.doc,
                                "time",
                                "last",
                                &format_day(&self.locale, m.sent_at),
                            )?,
                        );
                        let said = format!("{}: {}", sender_of(t, m), m.text);
                        append(&row, &text_el(&self.doc, "span", "preview", &said)?);
                    }
                    None => {
                        append(&row, &text_el(&self.doc, "span", "preview", &preview(m))?);
                        // Today's by the time it was sent, older ones by the day ("Nov 21"):
                        // yesterday evening's is not taken for this morning's.
                        let day = |ms: i64| js_sys::Date::new(&(ms as f64).into()).to_date_string();
                        let when = if day(now) == day(m.sent_at) {
                            format_time(&self.locale, m.sent_at)
                        } else {
                            format_date(
                                &self.locale,
                                m.sent_at,
                                &[("month", "short"), ("day", "numeric")],
                            )
                        };
                        append(&row, &text_el(&self.doc, "time", "", &when)?);
                    }
                }
                append(&button, &row);
            }
            append(&item, &button);
            append(list, &item);
        }
        Ok(())
    }

    /// Draws the open thread. `changed` are users whose identity key changed this session,
    /// `new_devices` users who added a device, `unreachable` users nothing can reach for
    /// now (not joined yet, or disabled): the thread header tells of the members among them.
    pub fn render_thread(
        &self,
        thread: Option<&Thread>,
        own_id: &str,
        changed: &[String],
        new_devices: &[String],
        unreachable: &[(String, &'static str)],
    ) -> ClientResult<()> {
        // A reader who scrolled up to older messages stays where they are when something
        // arrives; one at the bottom (or opening another thread) follows the conversation.
        let m = &self.messages;
        let same = thread.map(|t| t.id.as_str()) == m.get_attribute("data-thread").as_deref();
        let kept = (same && !at_bottom(m)).then(|| m.scroll_top());
        if !same {
            let editing = self
                .mode
                .borrow_mut()
                .take()
                .is_some_and(|(editing, _)| editing);
            // The draft stays with its thread (an edit in progress is no draft).
            let mut drafts = self.drafts.borrow_mut();
            if let Some(left) = m.get_attribute("data-thread") {
                drafts.retain(|(id, _)| *id != left);
                let draft = self.composer.value();
                if !editing && !draft.trim().is_empty() {
                    drafts.push((left, draft));
                }
            }
            let draft = thread.and_then(|t| drafts.iter().find(|(id, _)| *id == t.id));
            self.composer
                .set_value(draft.map(|(_, d)| d.as_str()).unwrap_or_default());
            m.set_text_content(None);
            self.drawn.borrow_mut().clear();
            attr(&self.context, "hidden", "");
            self.completion.close();
            // Files picked for the thread left are not sent to another by mistake.
            self.tray.leave();
        }
        if kept.is_none() {
            attr(&self.pill, "hidden", "");
        }
        let _ = self.warning.set_attribute("hidden", "");
        let Some(t) = thread else {
            // No thread drawn: the next one opened is not "the same".
            let _ = m.remove_attribute("data-thread");
            self.title.set_text_content(Some("No thread open"));
            self.members.set_text_content(None);
            self.show_notes(&[], false);
            // Nothing to write to yet: start or open a thread first.
            self.composer.set_disabled(true);
            return Ok(());
        };
        attr(m, "data-thread", &t.id);
        // In a group, received messages show who wrote them by initials (ui.css).
        let _ = m.toggle_attribute_with_force("data-group", t.members.len() > 2);
        // Key changes and new devices: a quiet note per person at the end of the timeline,
        // which can be dismissed (a key's also compared, but not by a visitor: no Verify).
        let notes: Vec<(&str, String, bool)> = t
            .members
            .iter()
            .filter_map(|m| {
                let name = display_name(m);
                let key = changed.contains(&m.id);
                let text = match (key, new_devices.contains(&m.id)) {
                    (true, _) => format!("The security key of {name} changed."),
                    (_, true) => format!("New device for {name}."),
                    _ => return None,
                };
                Some((m.id.as_str(), text, key))
            })
            .collect();
        self.show_notes(&notes, !self.app.class_list().contains("visitor"));
        let waiting: Vec<String> = t
            .members
            .iter()
            .filter(|m| m.id != own_id && why_unreachable(unreachable, &m.id) == Some("not_joined"))
            .map(display_name)
            .collect();
        // Nothing reaches them yet: a warning in the header while it lasts.
        if !waiting.is_empty() && !t.left {
            self.warning.set_text_content(Some(&format!(
                "{} {} not joined yet and will not see messages sent before joining.",
                waiting.join(", "),
                if waiting.len() == 1 { "has" } else { "have" }
            )));
            let _ = self.warning.remove_attribute("hidden");
        }
        self.title.set_text_content(Some(&t.title(own_id)));
        attr(&self.title, "title", &t.distribution);
        let mut names: Vec<String> = t
            .members
            .iter()
            .map(|m| match why_unreachable(unreachable, &m.id) {
                Some("disabled") => format!("{} (account disabled)", display_name(m)),
                Some(_) => format!("{} (not joined yet)", display_name(m)),
                // Oneself by one's name, as in the header (a visitor's tag is for staff).
                None if m.id == own_id => m.name.clone().unwrap_or_else(|| display_name(m)),
                None => display_name(m),
            })
            .collect();
        names.sort_unstable();
        let mut about = names.join(", ");
        if let Some(s) = t.expiration {
            about.push_str(&format!(
                " · messages disappear after {}",
                format_duration(s)
            ));
        }
        if t.left {
            about = "You are no longer a member of this thread.".into();
        }
        self.members.set_text_content(Some(&about));
        // Whom the composer offers after an @.
        *self.completion.members.borrow_mut() = t
            .members
            .iter()
            .filter(|m| m.id != own_id)
            .map(|m| (m.tag.clone(), display_name(m)))
            .collect();
        self.composer.set_disabled(t.left);
        // Which messages to draw: the newest page of a thread just opened, more as the
        // reader scrolls up, back far enough for a message asked for.
        let w = &self.window;
        let len = t.messages.len();
        let first = w.first.borrow().clone();
        let anchor = first.and_then(|id| t.messages.iter().position(|x| x.id == id));
        let mut from = match (same, anchor) {
            (true, Some(i)) => i.saturating_sub(w.more.take() * PAGE),
            // The first drawn went: still a page at least.
            (true, None) => w.from.get().min(len.saturating_sub(PAGE)),
            (false, _) => len.saturating_sub(PAGE),
        };
        w.more.set(0);
        if let Some(want) = w.want.take() {
            if let Some(i) = t.messages.iter().position(|x| x.id == want) {
                from = from.min(i.saturating_sub(10));
            }
        }
        let from = from.min(len);
        w.from.set(from);
        *w.first.borrow_mut() = t.messages.get(from).map(|x| x.id.clone());
        // Drawn from another message than before (a page more above): all of it again,
        // with the reader kept where they were, the focus on the message that had it, and
        // screen readers told to wait rather than hear every message again.
        let from_bottom = m.scroll_height() - m.scroll_top();
        let prepended = same && from != w.drawn_from.get();
        let focused = self
            .root
            .active_element()
            .and_then(|e| e.closest("[data-message]").ok().flatten())
            .and_then(|e| e.get_attribute("data-message"));
        if prepended {
            attr(m, "aria-busy", "true");
            m.set_text_content(None);
            self.drawn.borrow_mut().clear();
        }
        w.drawn_from.set(from);
        // Keep what is drawn up to the first message that changed (or the read line moved
        // past); draw from there on.
        let mut drawn = self.drawn.borrow_mut();
        let before = drawn.len();
        let marks = marks_of(t, own_id);
        let mut keep = 0;
        for (((message, state, sender, quote), item), m) in
            drawn.iter_mut().zip(&t.messages[from..])
        {
            // A new delivery state alone (sent, delivered, read by one more) changes the
            // state's words and `data-status` in place: nothing is drawn again for it.
            message.status = m.status;
            if message != m || *sender != sender_of(t, m) || *quote != quote_of(t, m) {
                break;
            }
            let now = state_of(&marks, m);
            if *state != now {
                let span = item.query_selector(".state").ok().flatten();
                let (Some((status, words)), Some(span)) = (&now, span) else {
                    break;
                };
                span.set_text_content(Some(words));
                attr(item, "data-status", status);
                *state = now;
            }
            keep += 1;
        }
        if let Some(first) = drawn.get(keep) {
            // Its day separator goes with it; the next message draws one again if need be.
            if let Some(sep) = first
                .1
                .previous_element_sibling()
                .filter(|e| e.class_name() == "day")
            {
                sep.remove();
            }
            while let Some(next) = first.1.next_element_sibling() {
                next.remove();
            }
            first.1.remove();
        }
        drawn.truncate(keep);
        let mut last_day = match keep {
            0 => String::new(),
            n => format_day(&self.locale, t.messages[from + n - 1].sent_at),
        };
        for (i, m) in t.messages.iter().enumerate().skip(from + keep) {
            let day = format_day(&self.locale, m.sent_at);
            // The same sender again within five minutes of the day: one group, one name.
            let grouped = day == last_day
                && (i > from)
                    .then(|| &t.messages[i - 1])
                    .is_some_and(|p| p.sender_id == m.sender_id && m.sent_at - p.sent_at < 300_000);
            if day != last_day {
                let sep = text_el(&self.doc, "li", "day", &day)?;
                attr(&sep, "role", "separator");
                append(&self.messages, &sep);
                last_day = day;
            }
            let class = [
                if m.outgoing { "msg out" } else { "msg in" },
                if m.deleted { " gone" } else { "" },
                if m.mentioned { " mention" } else { "" },
                if grouped { " cont" } else { "" },
            ];
            let item = el(&self.doc, "li", &class.concat())?;
            attr(&item, "data-message", &m.id);
            // Focusable, so the keyboard reaches its toolbar.
            attr(&item, "tabindex", "0");
            let (status, sender) = (state_of(&marks, m), sender_of(t, m));
            if !m.outgoing && !grouped {
                let (initials, tone) = initials(&sender, &m.sender_id);
                attr(&item, "data-initials", &initials);
                attr(&item, "data-tone", tone);
            }
            let meta = el(&self.doc, "div", "meta")?;
            append(&meta, &text_el(&self.doc, "span", "sender", &sender)?);
            append(
                &meta,
                &text_el(&self.doc, "time", "", &format_time(&self.locale, m.sent_at))?,
            );
            if m.edited_at.is_some() && !m.deleted {
                append(&meta, &text_el(&self.doc, "span", "edited", "edited")?);
            }
            if let Some((state, words)) = &status {
                append(&meta, &text_el(&self.doc, "span", "state", words)?);
                attr(&item, "data-status", state);
            }
            append(&item, &meta);
            let quote = quote_of(t, m);
            if let (Some(r), Some(words)) = (&m.reply_to, &quote) {
                let b = text_el(&self.doc, "button", "quote", words)?;
                attr(&b, "data-act", "goto");
                attr(&b, "data-goto", r);
                attr(&b, "aria-label", &format!("Reply to {words}"));
                append(&item, &b);
            }
            if m.deleted {
                append(
                    &item,
                    &text_el(&self.doc, "div", "text", "Message deleted")?,
                );
            } else if !m.text.is_empty() {
                let text = el(&self.doc, "div", "text")?;
                linkify(&self.doc, &text, &m.text)?;
                append(&item, &text);
            }
            for (i, a) in m.attachments.iter().enumerate() {
                let (b, img) = file_button(&self.doc, "Download ", &a.name, a.size, &a.mime)?;
                b.set_class_name("attachment");
                attr(&b, "data-attachment", &i.to_string());
                attr(&b, "data-message-id", &m.id);
                if let Some(img) = img {
                    img.set_class_name("image");
                }
                append(&item, &b);
            }
            if !m.reactions.is_empty() {
                let row = el(&self.doc, "div", "reactions")?;
                // Each emoji once, in the order first given, with who gave it.
                let mut shown: Vec<&str> = Vec::new();
                for r in &m.reactions {
                    if shown.contains(&r.emoji.as_str()) {
                        continue;
                    }
                    shown.push(&r.emoji);
                    let by: Vec<&sotto_core::amend::Reaction> =
                        m.reactions.iter().filter(|x| x.emoji == r.emoji).collect();
                    let names: Vec<String> = by
                        .iter()
                        .map(|x| match t.member(&x.user_id) {
                            Some(u) => display_name(u),
                            None => "someone".into(),
                        })
                        .collect();
                    let b = text_el(
                        &self.doc,
                        "button",
                        "reaction",
                        &format!("{} {}", r.emoji, by.len()),
                    )?;
                    attr(&b, "data-act", "react");
                    attr(&b, "data-emoji", &r.emoji);
                    let mine = by.iter().any(|x| x.user_id == own_id);
                    attr(&b, "aria-pressed", if mine { "true" } else { "false" });
                    attr(&b, "title", &names.join(", "));
                    append(&row, &b);
                }
                append(&item, &row);
            }
            append(&self.messages, &item);
            drawn.push(((m.clone(), status, sender, quote), item));
        }
        if prepended {
            if let Some(id) = focused {
                reveal(m, &id);
            }
            let _ = m.remove_attribute("aria-busy");
        }
        m.set_scroll_top(match (prepended, kept) {
            (true, _) => m.scroll_height() - from_bottom,
            (false, Some(top)) => top,
            (false, None) => m.scroll_height(),
        });
        // New messages from others below a reader who scrolled up: say so, without moving
        // them.
        let below = t.messages.iter().skip(from + before);
        if kept.is_some() && !prepended && below.clone().any(|m| !m.outgoing) {
            let _ = self.pill.remove_attribute("hidden");
        }
        Ok(())
    }

    /// Turns writing off (e.g. while offline and not signed in) or back on.
    pub fn set_read_only(&self, read_only: bool) {
        if read_only {
            self.composer.set_disabled(true);
        }
    }

    /// Puts text back where it was written (a send that could not go keeps the person's
    /// words): in the composer if its `thread` is open (or none is), else as that thread's
    /// draft, never in another thread's composer.
    pub fn set_draft(&self, thread: Option<&str>, text: &str) {
        let open = self.messages.get_attribute("data-thread");
        match thread.filter(|t| open.as_deref() != Some(*t)) {
            None if self.composer.value().is_empty() => self.composer.set_value(text),
            None => {}
            Some(t) => {
                let mut drafts = self.drafts.borrow_mut();
                if !drafts.iter().any(|(id, _)| id == t) {
                    drafts.push((t.to_owned(), text.to_owned()));
                }
            }
        }
    }

    /// Puts a failed edit or reply in `thread` back in the composer as it was: still
    /// editing or replying to `id` (the bar above shows what it showed), so Enter does not
    /// post it as a new message. If another thread is open by now, a reply waits as that
    /// thread's draft, and an edit is dropped (the message keeps its text; the notice says
    /// the edit failed).
    pub fn resume(&self, editing: bool, id: String, thread: &str, text: &str) {
        if self.messages.get_attribute("data-thread").as_deref() != Some(thread) {
            if !editing {
                self.set_draft(Some(thread), text);
            }
            return;
        }
        self.set_draft(None, text);
        *self.mode.borrow_mut() = Some((editing, id));
        let _ = self.context.remove_attribute("hidden");
    }

    /// Forgets every draft (signing out: the next person in this tab sees none of them).
    pub fn forget_drafts(&self) {
        self.drafts.borrow_mut().clear();
        self.composer.set_value("");
        self.mode.borrow_mut().take();
        attr(&self.context, "hidden", "");
        self.tray.leave();
    }

    /// Whether the open thread's messages are displayed (not hidden by the page, a
    /// minimised widget, or the list on a phone).
    pub fn thread_shown(&self) -> bool {
        self.messages.client_width() > 0
    }

    /// On a phone: the open thread in the list's place.
    /// Who is typing in the open thread ("" for no one).
    pub fn set_typing(&self, text: &str) {
        if self.typing.text_content().as_deref() != Some(text) {
            self.typing.set_text_content(Some(text));
        }
    }

    pub fn show_thread_pane(&self) {
        let _ = self.app.class_list().add_1("show-thread");
    }

    pub fn focus_composer(&self) {
        let _ = self.composer.focus();
    }

    /// Removes everything Sotto put in the host element.
    pub fn unmount(&self) {
        self.root.set_text_content(None);
    }
}

/// A drawn message: what it showed (the message, its delivery state, the sender's name and
/// the quote of what it replies to, as shown) and its element.
type Drawn = (
    (
        Message,
        Option<(&'static str, String)>,
        String,
        Option<String>,
    ),
    Element,
);

/// What a reply shows of the message it answers ("Bob Brown: the plan"), as that message is
/// now: edited or deleted there, the quote follows.
fn quote_of(t: &Thread, m: &Message) -> Option<String> {
    let r = m.reply_to.as_ref()?;
    Some(match t.messages.iter().find(|q| &q.id == r) {
        Some(q) => format!("{}: {}", sender_of(t, q), preview(q)),
        None => "An earlier message".into(),
    })
}

/// The other members and how far each has read, found once per drawing: a message's state
/// then costs one pass over the members, not one per member over every read mark.
type Marks<'a> = Vec<(&'a sotto_core::protocol::User, i64)>;

fn marks_of<'a>(t: &'a Thread, own_id: &str) -> Marks<'a> {
    t.members
        .iter()
        .filter(|u| u.id != own_id)
        .map(|u| (u, t.read_marks.get(&u.id).copied().unwrap_or(i64::MIN)))
        .collect()
}

/// The delivery state shown on `m`: its `data-status` and words. In a group, who read it:
/// "Read by Bob", "Read by 2 of 3", "Read by everyone".
fn state_of(marks: &Marks, m: &Message) -> Option<(&'static str, String)> {
    let readers: Vec<&sotto_core::protocol::User> = marks
        .iter()
        .filter(|(_, until)| *until >= m.sent_at)
        .map(|(u, _)| *u)
        .collect();
    let others = marks.len();
    let (state, words) = match m.status {
        Status::Pending => ("pending", "Sending when online…"),
        Status::Failed => ("failed", "Not sent"),
        Status::Expired => ("failed", "Not delivered (expired)"),
        Status::Sent | Status::Delivered if !readers.is_empty() => {
            let words = match readers.len() {
                n if n == others => "Read by everyone".into(),
                1 => format!("Read by {}", display_name(readers[0])),
                n => format!("Read by {n} of {others}"),
            };
            return Some(("read", if others == 1 { "Read".into() } else { words }));
        }
        Status::Delivered => ("delivered", "Delivered"),
        Status::Sent => ("sent", "Sent"),
        Status::Received => return None,
    };
    Some((state, words.into()))
}

/// A message in a line: its text, its first attachment's name, or that it was deleted.
fn preview(m: &Message) -> String {
    match (m.deleted, m.text.is_empty(), m.attachments.first()) {
        (true, _, _) => "Message deleted".into(),
        (_, true, Some(a)) => format!("Attachment: {}", a.name),
        _ => m.text.chars().take(120).collect(),
    }
}

/// The name shown on `m`: the member's as the thread knows them now.
fn sender_of(t: &Thread, m: &Message) -> String {
    t.member(&m.sender_id)
        .map(display_name)
        .unwrap_or_else(|| m.sender_name.clone())
}

/// "Bob Brown" → "BB", "carol" → "c" (ui.css writes it in capitals: Rust's upper case
/// would bring Unicode's tables into the wasm), and one of six tones, the same for a person
/// in every thread: who wrote a message, at a glance, beside its bubble.
fn initials(name: &str, id: &str) -> (String, &'static str) {
    // The first letter of the first word and of the last ("visitor.4ac1 (Vera)": "vV").
    let (mut letters, mut last, mut starts) = (String::new(), None, true);
    for c in name.chars() {
        let gap = c == ' ' || c == '(';
        if starts && !gap {
            match letters.is_empty() {
                true => letters.push(c),
                false => last = Some(c),
            }
        }
        starts = gap;
    }
    letters.extend(last);
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b));
    let tone = ["0", "1", "2", "3", "4", "5"][(hash % 6) as usize];
    (letters, tone)
}

/// Whether `list` is scrolled to (near) its end.
fn at_bottom(list: &Element) -> bool {
    list.scroll_top() + list.client_height() + 40 >= list.scroll_height()
}

/// Fills `e` with `text`, each `http://` or `https://` link in it an `<a>` that opens in a
/// new tab with neither opener nor referrer. Everything is set as text; a link's address is
/// the very text shown, so a message cannot show one address and lead to another.
fn linkify(doc: &Document, e: &Element, text: &str) -> ClientResult<()> {
    let (mut rest, mut links) = (text, 0);
    // One pass: each search starts where the last ended. At most 50 links a message.
    while let Some(start) = rest.find("http").filter(|_| links < 50) {
        let from = &rest[start..];
        if !(from.starts_with("http://") || from.starts_with("https://")) {
            let _ = e.append_with_str_1(&rest[..start + 4]);
            rest = &rest[start + 4..];
            continue;
        }
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(from.len());
        // Punctuation that ends a sentence is not part of the link; nor is a closing
        // bracket the link did not open.
        let mut url = from[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', '\'']);
        while url.ends_with(')') && url.matches(')').count() > url.matches('(').count() {
            url = &url[..url.len() - 1];
        }
        let _ = e.append_with_str_1(&rest[..start]);
        // Direction marks could show the address turned round: such a link stays text.
        let spoofable = url.contains(|c: char| {
            matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
        if url.len() > "https://".len() && !spoofable {
            links += 1;
            let a = text_el(doc, "a", "", url)?;
            // Isolated from the text around it, which cannot turn it round either.
            attr(&a, "dir", "ltr");
            attr(&a, "href", url);
            attr(&a, "target", "_blank");
            attr(&a, "rel", "noopener noreferrer nofollow");
            append(e, &a);
        } else {
            let _ = e.append_with_str_1(url);
        }
        rest = &from[url.len()..];
    }
    let _ = e.append_with_str_1(rest);
    Ok(())
}

/// Why nothing reaches `user` for now, if so (see `render_thread`).
fn why_unreachable(list: &[(String, &'static str)], user: &str) -> Option<&'static str> {
    list.iter().find(|(u, _)| u == user).map(|(_, why)| *why)
}
