//! `search()` of the page API, over [`crate::search`].

use super::Inner;
use crate::error::{ClientError, ClientResult};
use crate::model::Message;
use crate::search::{find, DEFAULT_RESULTS, MAX_QUERY, MAX_RESULTS};

impl Inner {
    /// `search(query, {threadId, limit})` of the page API.
    pub(super) fn search(
        &self,
        query: &str,
        only: Option<&str>,
        limit: Option<f64>,
    ) -> ClientResult<Vec<Message>> {
        if query.trim().is_empty() || query.len() > MAX_QUERY {
            return Err(ClientError::new(
                "bad_argument",
                format!("a search needs 1 to {MAX_QUERY} bytes of text"),
            ));
        }
        let limit = match limit {
            None => DEFAULT_RESULTS,
            Some(l) if (1.0..=MAX_RESULTS as f64).contains(&l) => l as usize,
            Some(_) => {
                return Err(ClientError::new(
                    "bad_option",
                    format!("limit must be 1 to {MAX_RESULTS}"),
                ))
            }
        };
        let state = self.state.borrow();
        if let Some(id) = only {
            if !state.threads.iter().any(|t| t.id == id) {
                return Err(super::unknown_thread(id));
            }
        }
        Ok(find(&state.threads, query, only, limit)
            .into_iter()
            .map(|(_, m)| m.clone())
            .collect())
    }
}
