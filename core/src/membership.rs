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

use crate::expr;
use crate::protocol::{Resolved, User};
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

/// A thread's distribution as kept and sent: the canonical list of users (`@a + @b`) when
/// `expr` named no group, so the thread keeps exactly those members; the expression itself
/// in normal form when it named groups (`@support + @visitor.k3`), so the thread can follow
/// their removals. The server's word on which tags are groups is checked: a group must be
/// a tag of `expr` and no resolved user's tag. An expression too long to keep falls back
/// to the list. Returns the distribution and the groups it follows.
pub fn distribution(expr: &str, resolved: &Resolved) -> (String, Vec<String>) {
    if let Ok(parsed) = expr::parse(expr) {
        let tags = parsed.tags();
        let groups: Vec<String> = resolved
            .groups
            .iter()
            .filter(|g| tags.contains(&g.as_str()) && !resolved.users.iter().any(|u| u.tag == **g))
            .cloned()
            .collect();
        let printed = parsed.to_string();
        if !groups.is_empty() && printed.chars().count() <= expr::MAX_LEN {
            return (printed, groups);
        }
    }
    // The list of the users kept, made here: never the server's word for it.
    (
        expr::canonical(resolved.users.iter().map(|u| u.tag.as_str())),
        Vec::new(),
    )
}

/// Who a thread may have as members after a member changed its distribution to `expr`
/// and it was resolved again (`resolved`): those it had (`current`), the users of groups
/// the change newly names (`chosen`, user IDs, each such group resolved on its own), and
/// anyone named by their own tag — unless a member already answers to that tag (a tag
/// given to someone else since). Never someone who is in only through a group the thread
/// already named (`groups`), nor anyone the server slipped in: the server defines the
/// groups and resolves the tags, and must not add a reader to a conversation under way.
pub fn admissible(
    expr: &str,
    groups: &[String],
    current: &[User],
    chosen: &[String],
    resolved: &Resolved,
) -> Vec<User> {
    let named: Vec<String> = expr::parse(expr)
        .map(|e| e.added_tags().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    resolved
        .users
        .iter()
        .filter(|u| {
            current.iter().any(|c| c.id == u.id)
                || chosen.contains(&u.id)
                || (named.contains(&u.tag)
                    && !groups.contains(&u.tag)
                    && !current.iter().any(|c| c.tag == u.tag))
        })
        .cloned()
        .collect()
}

/// Which of `known` (user tags, one per user) `distribution` names now, given the current
/// members of each group it follows (`groups`: a name and indices into `known`). A tag that
/// is neither a group given nor one of `known` names no one. Plain masks rather than sets:
/// this runs in the wasm client, where every collection type instantiated costs bytes.
pub fn members_now(
    distribution: &str,
    known: &[&str],
    groups: &[(&str, Vec<usize>)],
) -> Result<Vec<bool>, expr::ExprError> {
    fn mask(e: &expr::Expr, known: &[&str], groups: &[(&str, Vec<usize>)]) -> Vec<bool> {
        match e {
            expr::Expr::Tag { name, .. } => match groups.iter().find(|(g, _)| g == name) {
                Some((_, members)) => (0..known.len()).map(|i| members.contains(&i)).collect(),
                None => known.iter().map(|t| t == name).collect(),
            },
            expr::Expr::Union(a, b) | expr::Expr::Difference(a, b) => {
                let union = matches!(e, expr::Expr::Union(..));
                let (a, b) = (mask(a, known, groups), mask(b, known, groups));
                a.iter()
                    .zip(b)
                    .map(|(x, y)| if union { *x || y } else { *x && !y })
                    .collect()
            }
        }
    }
    Ok(mask(&expr::parse(distribution)?, known, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn user(tag: &str) -> User {
        User {
            id: format!("u-{tag}"),
            tag: tag.into(),
            name: None,
            email: None,
            ephemeral: false,
        }
    }

    fn resolved(tags: &[&str], groups: &[&str]) -> Resolved {
        Resolved {
            users: tags.iter().map(|t| user(t)).collect(),
            canonical: crate::expr::canonical(tags.iter().copied()),
            groups: strings(groups),
        }
    }

    #[test]
    fn a_list_of_users_is_kept_as_such_and_groups_are_followed() {
        assert_eq!(
            distribution("(@bob) + @alice", &resolved(&["alice", "bob"], &[])),
            ("@alice + @bob".into(), vec![])
        );
        let support = resolved(&["gary", "sue", "visitor.k3"], &["support"]);
        assert_eq!(
            distribution("(@Support) + @visitor.k3", &support),
            ("@support + @visitor.k3".into(), strings(&["support"]))
        );
        let long = format!("(@support) + ({})", "@abcdefgh + ".repeat(90) + "@x");
        assert_eq!(distribution(&long, &support).1, Vec::<String>::new());
        // The server cannot make a person into a group, nor a group the thread never named.
        let lie = resolved(&["alice", "carol"], &["carol", "support"]);
        assert_eq!(
            distribution("@carol + @alice", &lie),
            ("@alice + @carol".into(), vec![])
        );
    }

    #[test]
    fn a_re_resolved_group_brings_no_one_new_but_a_named_user_does() {
        let groups = strings(&["desk"]);
        let current = [user("ann"), user("carol")];
        let tags = |kept: Vec<User>| kept.into_iter().map(|u| u.tag).collect::<Vec<_>>();
        // Dan joined @desk since; Xavier is named by a member's amend.
        let now = resolved(&["ann", "carol", "dan", "xavier"], &["desk"]);
        let kept = admissible("@desk + @carol + @xavier", &groups, &current, &[], &now);
        assert_eq!(tags(kept), ["ann", "carol", "xavier"]);
        // A tag only taken away adds no one, even if it now names a newcomer.
        let kept = admissible("@desk + @carol - @dan", &groups, &current, &[], &now);
        assert_eq!(tags(kept), ["ann", "carol"]);
        // A plain thread: the server slips Mallory into the answer to an amend.
        let plain = resolved(&["ann", "carol", "mallory", "xavier"], &[]);
        let kept = admissible("@ann + @carol + @xavier", &[], &current, &[], &plain);
        assert_eq!(tags(kept), ["ann", "carol", "xavier"]);
        // The server answers @carol with someone else: Carol's tag is already taken here.
        let mut swapped = resolved(&["ann", "xavier"], &[]);
        swapped.users.push(User {
            id: "u-mallory".into(),
            ..user("carol")
        });
        let kept = admissible("@ann + @carol + @xavier", &[], &current, &[], &swapped);
        assert_eq!(tags(kept), ["ann", "xavier"]);
        // A group the change newly names brings the users it resolved to alone.
        let with_sales = resolved(&["ann", "carol", "dan", "sam"], &["desk", "sales"]);
        let kept = admissible(
            "@desk + @carol + @sales",
            &strings(&["desk", "sales"]),
            &current,
            &["u-sam".to_string()],
            &with_sales,
        );
        assert_eq!(tags(kept), ["ann", "carol", "sam"]);
    }

    #[test]
    fn the_list_kept_is_made_here_not_taken_from_the_server() {
        let mut lie = resolved(&["alice", "bob"], &[]);
        lie.canonical = "@alice + @bob + @mallory".into();
        assert_eq!(distribution("@alice + @bob", &lie).0, "@alice + @bob");
    }

    #[test]
    fn members_follow_the_groups_and_keep_what_was_taken_out() {
        let known = ["gary", "dan", "visitor.k3", "sue"];
        let groups = [("support", vec![0, 1])];
        let now = members_now("@support + @visitor.k3 - @dan", &known, &groups).unwrap();
        assert_eq!(now, [true, false, true, false]);
        // A user tag no one answers to any more (a deleted user) names no one.
        let now = members_now("@support + @gone", &known, &groups).unwrap();
        assert_eq!(now, [true, true, false, false]);
        let now = members_now("@sue + (@support - (@gary + @dan))", &known, &groups).unwrap();
        assert_eq!(now, [false, false, false, true]);
    }

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
