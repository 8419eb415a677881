//! Threads and their messages, kept in IndexedDB (store `threads`), so history appears at
//! once after a reload and messages typed offline survive until they are sent. Every
//! record is AES-GCM ciphertext under the browser's non-extractable key
//! ([`crate::keystore`]), like the keys themselves.
//!
//! A thread is one record (`server|org|user|thread`: everything but its messages) and its
//! messages are pages of [`PAGE`] records each (`…|thread|000000`, `…|000001`, …). A save
//! writes the thread record and only the pages that differ from what was last written, in
//! one transaction: a new message costs one page, however long the thread, where writing
//! whole threads made every message slower as the history grew.

use crate::error::{js_failure, ClientResult};
use crate::idb::{self, THREADS};
use crate::keystore;
use crate::model::{Message, Thread};
use crate::util::sort_by_number;
use js_sys::Reflect;
use std::cell::RefCell;
use wasm_bindgen::JsValue;
use zeroize::Zeroizing;

/// Messages per stored page.
const PAGE: usize = 32;

/// Per thread record key, its pages as last written or read: a save writes only the pages
/// that differ. A list, not a hash map (a few threads; a map costs wasm bytes).
type Written = Vec<(String, Vec<Vec<Message>>)>;

thread_local! {
    static WRITTEN: RefCell<Written> = const { RefCell::new(Vec::new()) };
}

/// The pages last written for `thread_key` (empty if none), to read or replace.
fn written_pages<'a>(written: &'a mut Written, thread_key: &str) -> &'a mut Vec<Vec<Message>> {
    let at = match written.iter().position(|(k, _)| k == thread_key) {
        Some(at) => at,
        None => {
            written.push((thread_key.to_owned(), Vec::new()));
            written.len() - 1
        }
    };
    &mut written[at].1
}

/// Forgets what was written for keys starting with `prefix` (`""`: everything, when a
/// client is destroyed: the copy is plaintext).
pub fn forget(prefix: &str) {
    WRITTEN.with(|w| w.borrow_mut().retain(|(k, _)| !k.starts_with(prefix)));
}

fn key(user_key: &str, thread_id: &str) -> String {
    format!("{user_key}|{thread_id}")
}

fn page_key(thread_key: &str, page: usize) -> String {
    format!("{thread_key}|{page:06}")
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> ClientResult<Zeroizing<Vec<u8>>> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|e| crate::http::failed("storage", e))
}

/// Every stored thread of a user, most recent activity first.
pub async fn load(user_key: &str) -> ClientResult<Vec<Thread>> {
    let mut threads = Vec::new();
    let mut pages: Vec<(String, usize, Vec<Message>)> = Vec::new();
    for value in idb::get_prefixed(THREADS, user_key).await? {
        // Plain JSON is what versions before encrypted history wrote.
        let json = match (value.as_string(), keystore::sealed_parts(&value)) {
            (Some(json), _) => Zeroizing::new(json.into_bytes()),
            (None, Some((iv, data))) => keystore::decrypt(&iv, &data).await?,
            _ => continue,
        };
        let page = Reflect::get(&value, &"page".into())
            .ok()
            .and_then(|p| p.as_f64());
        let thread = Reflect::get(&value, &"thread".into())
            .ok()
            .and_then(|t| t.as_string());
        match (page, thread) {
            (Some(page), Some(thread)) => {
                if let Ok(messages) = serde_json::from_slice(&json) {
                    pages.push((thread, page as usize, messages));
                }
            }
            _ => {
                // An ID holding `|` (accepted before IDs were checked) could name another
                // thread's page: such a thread is left out.
                if let Ok(thread) = serde_json::from_slice::<Thread>(&json) {
                    if sotto_core::sealing::valid_thread_id(&thread.id) {
                        threads.push(thread);
                    }
                }
            }
        }
    }
    forget(&format!("{user_key}|"));
    // Pages are written in one transaction with their thread, numbered from 0: each
    // thread's run from page 0 until one is missing.
    sort_by_number(&mut pages, |(_, page, _)| *page as i64);
    WRITTEN.with(|w| {
        let mut written = w.borrow_mut();
        for t in &mut threads {
            let read: Vec<Vec<Message>> = pages
                .iter()
                .filter(|(thread, _, _)| *thread == t.id)
                .enumerate()
                .map_while(|(n, (_, page, messages))| (*page == n).then(|| messages.clone()))
                .collect();
            if t.messages.is_empty() {
                t.messages = read.iter().flatten().cloned().collect();
            } else if !read.is_empty() {
                // Both a whole record (an older version's tab wrote it after this one wrote
                // pages) and pages: one copy of each message, in sending order.
                t.messages.extend(read.iter().flatten().cloned());
                sort_by_number(&mut t.messages, |m| m.sent_at);
                let mut seen = Vec::new();
                t.messages.retain(|m| {
                    let new = !seen.contains(&m.id);
                    seen.push(m.id.clone());
                    new
                });
            }
            *written_pages(&mut written, &key(user_key, &t.id)) = read;
        }
    });
    // Newest activity first.
    sort_by_number(&mut threads, |t| t.last_activity().wrapping_neg());
    Ok(threads)
}

/// A thread's save, ready to write: serialised while the thread is at hand, so the
/// caller's borrow of it ends before anything waits.
pub struct Pending {
    thread_id: String,
    thread_key: String,
    thread: Zeroizing<Vec<u8>>,
    /// Changed pages: their number, JSON and contents (remembered once written).
    pages: Vec<(usize, Zeroizing<Vec<u8>>, Vec<Message>)>,
    /// Pages the thread has now; any stored beyond are deleted (always: what is stored may
    /// be more than this tab wrote, e.g. after linking saved a shortened copy).
    count: usize,
}

/// Prepares the save of `thread`: the thread record and the pages that changed.
pub fn prepare(user_key: &str, thread: &mut Thread) -> ClientResult<Pending> {
    let thread_key = key(user_key, &thread.id);
    let messages = std::mem::take(&mut thread.messages);
    let record = json(&*thread);
    thread.messages = messages;
    let record = record?;
    let mut pages = Vec::new();
    WRITTEN.with(|w| {
        let mut w = w.borrow_mut();
        let old = written_pages(&mut w, &thread_key);
        for (n, page) in thread.messages.chunks(PAGE).enumerate() {
            if old.get(n).is_none_or(|old| old.as_slice() != page) {
                pages.push((n, json(page)?, page.to_vec()));
            }
        }
        Ok::<_, crate::error::ClientError>(())
    })?;
    let count = thread.messages.len().div_ceil(PAGE);
    Ok(Pending {
        thread_id: thread.id.clone(),
        thread_key,
        thread: record,
        pages,
        count,
    })
}

impl Pending {
    /// Encrypts and writes the prepared records in one transaction.
    pub async fn write(self) -> ClientResult<()> {
        let mut puts = vec![(self.thread_key.clone(), sealed(&self.thread, None).await?)];
        for (n, json, _) in &self.pages {
            let record = sealed(json, Some((&self.thread_id, *n))).await?;
            puts.push((page_key(&self.thread_key, *n), record));
        }
        let beyond = web_sys::IdbKeyRange::bound(
            &page_key(&self.thread_key, self.count).into(),
            &format!("{}|\u{10FFFF}", self.thread_key).into(),
        )
        .map_err(|e| js_failure("storage", e))?;
        idb::write_all(THREADS, &puts, &[beyond.into()]).await?;
        WRITTEN.with(|w| {
            let mut written = w.borrow_mut();
            // Forgotten meanwhile (the thread or the user was removed): nothing to remember.
            let Some((_, stored)) = written.iter_mut().find(|(k, _)| *k == self.thread_key) else {
                return;
            };
            stored.truncate(self.count);
            for (n, _, page) in self.pages {
                if n < stored.len() {
                    stored[n] = page;
                } else {
                    stored.push(page);
                }
            }
        });
        Ok(())
    }
}

/// `plaintext` encrypted as a record; a page also says which thread and page it is.
async fn sealed(plaintext: &[u8], page: Option<(&str, usize)>) -> ClientResult<JsValue> {
    let (iv, data) = keystore::encrypt(plaintext).await?;
    let record = keystore::sealed_record(&iv, &data)?;
    if let Some((thread, n)) = page {
        let _ = Reflect::set(&record, &"thread".into(), &thread.into());
        let _ = Reflect::set(&record, &"page".into(), &(n as f64).into());
    }
    Ok(record.into())
}

/// Saves a thread (the records that changed) before going on.
pub async fn save(user_key: &str, thread: &mut Thread) -> ClientResult<()> {
    prepare(user_key, thread)?.write().await
}

/// Forgets every thread of a user in this browser.
pub async fn remove_all(user_key: &str) -> ClientResult<()> {
    forget(&format!("{user_key}|"));
    idb::delete_prefixed(THREADS, user_key).await
}

/// Forgets one thread and its pages in this browser.
pub async fn remove(user_key: &str, thread_id: &str) -> ClientResult<()> {
    let thread_key = key(user_key, thread_id);
    WRITTEN.with(|w| w.borrow_mut().retain(|(k, _)| *k != thread_key));
    let pages = idb::prefix_range(&thread_key)?;
    idb::write_all(THREADS, &[], &[thread_key.into(), pages.into()]).await
}
