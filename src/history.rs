//! Threads and their messages, kept in IndexedDB (store `threads`) under
//! `server|org|user|thread`, so history appears at once after a reload and messages typed
//! offline survive until they are sent.

use crate::error::{ClientError, ClientResult};
use crate::idb::{self, THREADS};
use crate::model::Thread;

fn key(user_key: &str, thread_id: &str) -> String {
    format!("{user_key}|{thread_id}")
}

/// Every stored thread of a user, most recent activity first.
pub async fn load(user_key: &str) -> ClientResult<Vec<Thread>> {
    let mut threads: Vec<Thread> = idb::get_prefixed(THREADS, user_key)
        .await?
        .into_iter()
        .filter_map(|v| v.as_string())
        .filter_map(|json| serde_json::from_str(&json).ok())
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.last_activity()));
    Ok(threads)
}

pub async fn save(user_key: &str, thread: &Thread) -> ClientResult<()> {
    let json =
        serde_json::to_string(thread).map_err(|e| ClientError::new("storage", e.to_string()))?;
    idb::put(THREADS, &key(user_key, &thread.id), &json.into()).await
}

/// Forgets every thread of a user in this browser.
pub async fn remove_all(user_key: &str) -> ClientResult<()> {
    idb::delete_prefixed(THREADS, user_key).await
}

/// Forgets one thread in this browser.
pub async fn remove(user_key: &str, thread_id: &str) -> ClientResult<()> {
    idb::delete(THREADS, &key(user_key, thread_id)).await
}
