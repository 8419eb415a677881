//! Who may change a thread, and when a change counts.
//!
//! A thread's members are its distribution as last resolved. Only a current member may post
//! to it or change it (members, attributes, expiration): [`crate::inbox`] refuses bodies and
//! sender keys from anyone else, and every body's sender is authenticated end to end by the
//! session or signed sender key that carried it. So a removed member cannot re-add
//! themselves: by the time their update arrives, they are no longer a member.
//!
//! Concurrent changes converge by last-writer-wins on `meta_at` (the change's time). A
//! change dated more than [`MAX_CLOCK_SKEW_MS`] ahead of this device's clock is refused, so
//! nobody can pin a thread's state beyond the reach of later changes.

use crate::CoreError;

/// How far ahead of this device's clock a change may be dated.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Whether a change dated `change_at` replaces the thread state dated `current_at`.
pub fn is_newer(current_at: i64, change_at: i64, now_ms: i64) -> Result<bool, CoreError> {
    if change_at > now_ms + MAX_CLOCK_SKEW_MS {
        return Err(CoreError::FromTheFuture);
    }
    Ok(change_at > current_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_changes_count_and_changes_from_the_future_are_refused() {
        assert_eq!(is_newer(10, 20, 1_000), Ok(true));
        assert_eq!(is_newer(20, 10, 1_000), Ok(false));
        assert_eq!(is_newer(20, 20, 1_000), Ok(false));
        assert_eq!(is_newer(0, 1_000 + MAX_CLOCK_SKEW_MS, 1_000), Ok(true));
        assert_eq!(
            is_newer(0, 1_001 + MAX_CLOCK_SKEW_MS, 1_000),
            Err(CoreError::FromTheFuture)
        );
        assert_eq!(is_newer(0, i64::MAX, 1_000), Err(CoreError::FromTheFuture));
    }
}
