//! Threads and their messages, kept in IndexedDB (store `threads`) under
//! `server|org|user|thread`, so history appears at once after a reload and messages typed
//! offline survive until they are sent. Each thread is stored as AES-GCM ciphertext under
//! the browser's non-extractable key ([`crate::keystore`]), like the keys themselves.

use crate::error::{ClientError, ClientResult};
use crate::idb::{self, THREADS};
use crate::keystore;
use crate::model::Thread;

fn key(user_key: &str, thread_id: &str) -> String {
    format!("{user_key}|{thread_id}")
}

/// Every stored thread of a user, most recent activity first.
pub async fn load(user_key: &str) -> ClientResult<Vec<Thread>> {
    let mut threads = Vec::new();
    for value in idb::get_prefixed(THREADS, user_key).await? {
        // Plain JSON is what versions before encrypted history wrote.
        let json = match (value.as_string(), keystore::sealed_parts(&value)) {
            (Some(json), _) => zeroize::Zeroizing::new(json.into_bytes()),
            (None, Some((iv, data))) => keystore::decrypt(&iv, &data).await?,
            _ => continue,
        };
        if let Ok(thread) = serde_json::from_slice::<Thread>(&json) {
            threads.push(thread);
        }
    }
    threads.sort_by_key(|t| std::cmp::Reverse(t.last_activity()));
    Ok(threads)
}

pub async fn save(user_key: &str, thread: &Thread) -> ClientResult<()> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(thread).map_err(|e| ClientError::new("storage", e.to_string()))?,
    );
    let (iv, data) = keystore::encrypt(&json).await?;
    let record = keystore::sealed_record(&iv, &data)?;
    idb::put(THREADS, &key(user_key, &thread.id), &record).await
}

/// Forgets every thread of a user in this browser.
pub async fn remove_all(user_key: &str) -> ClientResult<()> {
    idb::delete_prefixed(THREADS, user_key).await
}

/// Forgets one thread in this browser.
pub async fn remove(user_key: &str, thread_id: &str) -> ClientResult<()> {
    idb::delete(THREADS, &key(user_key, thread_id)).await
}
