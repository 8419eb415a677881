//! Search over the history this browser holds: the decrypted messages in memory, so no
//! index leaves the device and nothing is asked of the server. Every word of the query
//! (split at spaces) must appear in a message's text, in any case; newest first.

use crate::model::{Message, Thread};
use crate::util::sort_by_number;

/// The longest query taken, in bytes.
pub const MAX_QUERY: usize = 256;
/// How many results a search gives unless asked for another number, and at most.
pub const DEFAULT_RESULTS: usize = 50;
pub const MAX_RESULTS: usize = 500;

/// The messages of `threads` (or of the thread `only`) whose text holds every word of
/// `query`, newest first, at most `limit`.
pub fn find<'a>(
    threads: &'a [Thread],
    query: &str,
    only: Option<&str>,
    limit: usize,
) -> Vec<(&'a Thread, &'a Message)> {
    let lower = lowercase(query);
    let words: Vec<&str> = lower.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<(&Thread, &Message)> = threads
        .iter()
        .filter(|t| only.is_none_or(|id| t.id == id))
        .flat_map(|t| t.messages.iter().map(move |m| (t, m)))
        // A text with a NUL would break the pairing below (and no one types one).
        .filter(|(_, m)| !m.text.is_empty() && !m.text.contains('\0'))
        .collect();
    // Every text in one call to the browser's lowercasing, NUL-separated.
    let texts: Vec<&str> = candidates.iter().map(|(_, m)| m.text.as_str()).collect();
    let lower = lowercase(&texts.join("\0"));
    let mut found: Vec<(&Thread, &Message)> = candidates
        .into_iter()
        .zip(lower.split('\0'))
        .filter(|(_, text)| words.iter().all(|w| text.contains(w)))
        .map(|(found, _)| found)
        .collect();
    sort_by_number(&mut found, |(_, m)| m.sent_at.wrapping_neg());
    found.truncate(limit);
    found
}

/// `text` in lower case, by the browser: Rust's own `to_lowercase` brings Unicode's case
/// tables into the wasm (kilobytes) for what the browser already knows.
fn lowercase(text: &str) -> String {
    js_sys::JsString::from(text).to_lower_case().into()
}
