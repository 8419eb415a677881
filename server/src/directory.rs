//! The org's directory: users (found or created at sign-in), their tags, named groups, and
//! the resolution of thread expressions to users.

use crate::auth::identity::Identity;
use crate::db::{new_id, now_secs};
use crate::db::{Conn, OptionalExtension, Row};
use crate::error::ApiError;
use crate::params;
use axum::http::StatusCode;
use sotto_core::expr;
use sotto_core::protocol::{Resolved, User};
use std::collections::BTreeSet;

const USER_COLUMNS: &str = "id, tag, name, email, ephemeral";

fn user_from_row(r: &Row<'_>) -> crate::db::Result<User> {
    Ok(User {
        id: r.get(0)?,
        tag: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        ephemeral: r.get(4)?,
    })
}

/// Refuses a user ID that is not a user of `org_id` (`404 unknown_user`), so no request
/// reaches into another org.
pub fn require_user_in_org(conn: &Conn, user_id: &str, org_id: &str) -> Result<(), ApiError> {
    let in_org: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND org_id = ?2)",
        crate::params![user_id, org_id],
        |r| r.get(0),
    )?;
    if in_org {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "unknown_user",
            "no such user in your org",
        ))
    }
}

pub fn user_by_id(conn: &Conn, id: &str) -> crate::db::Result<Option<(String, User)>> {
    conn.query_row(
        &format!("SELECT org_id, {USER_COLUMNS} FROM users WHERE id = ?1"),
        params![id],
        |r| {
            Ok((
                r.get(0)?,
                User {
                    id: r.get(1)?,
                    tag: r.get(2)?,
                    name: r.get(3)?,
                    email: r.get(4)?,
                    ephemeral: r.get(5)?,
                },
            ))
        },
    )
    .optional()
}

fn find_by(conn: &Conn, org: &str, column: &str, value: &str) -> crate::db::Result<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND {column} = ?2"),
        params![org, value],
        user_from_row,
    )
    .optional()
}

/// A tag made from `seed` (lower case, `[a-z0-9_.]`, at most 32 characters), unique in the
/// org: `bob`, then `bob2`, `bob3`…
fn unique_tag(conn: &Conn, org: &str, seed: &str) -> crate::db::Result<String> {
    let mut base: String = seed
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    base = base.trim_matches(|c| c == '_' || c == '.').to_string();
    if base.is_empty() {
        base = "user".into();
    }
    let mut candidate = base.clone();
    let mut n = 1;
    while tag_taken(conn, org, &candidate)? {
        n += 1;
        candidate = format!("{base}{n}");
    }
    Ok(candidate)
}

/// Whether a user or a group of `org` has `tag`.
pub(crate) fn tag_taken(conn: &Conn, org: &str, tag: &str) -> crate::db::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE org_id = ?1 AND tag = ?2)
             OR EXISTS (SELECT 1 FROM group_tags WHERE org_id = ?1 AND name = ?2)",
        params![org, tag],
        |r| r.get(0),
    )
}

/// Creates a user. The tag comes from the first of `tag_seed`, the email's local part and
/// the name. `email_verified` says the email came from a sign-in token that vouches for it
/// (a visitor's own email never does): only such an email finds the user at a sign-in.
#[allow(clippy::too_many_arguments)]
pub fn create_user(
    conn: &Conn,
    org: &str,
    external_id: Option<&str>,
    email: Option<&str>,
    name: Option<&str>,
    ephemeral: bool,
    email_verified: bool,
    tag_seed: Option<&str>,
) -> crate::db::Result<User> {
    let seed = tag_seed
        .or_else(|| email.and_then(|e| e.split('@').next()))
        .or(name)
        .unwrap_or("user");
    let user = User {
        id: new_id("u"),
        tag: unique_tag(conn, org, seed)?,
        name: name.map(str::to_owned),
        email: email.map(str::to_owned),
        ephemeral,
    };
    conn.execute(
        "INSERT INTO users (id, org_id, external_id, email, name, tag, ephemeral, email_verified, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            user.id,
            org,
            external_id,
            user.email,
            user.name,
            user.tag,
            ephemeral,
            email_verified && !ephemeral && email.is_some(),
            now_secs()
        ],
    )?;
    tracing::info!(org, user = %user.id, tag = %user.tag, ephemeral, "user created");
    crate::webhooks::emit(
        conn,
        org,
        crate::webhooks::USER_CREATED,
        serde_json::json!({
            "user": { "id": user.id, "external_id": external_id, "tag": user.tag, "ephemeral": ephemeral },
            "name": user.name,
            "email": user.email,
        }),
    )?;
    Ok(user)
}

/// Refuses a sign-in to a user the site's backend disabled (`403 user_disabled`).
pub fn refuse_if_disabled(conn: &Conn, user_id: &str) -> Result<(), ApiError> {
    let disabled: bool = conn.query_row(
        "SELECT disabled FROM users WHERE id = ?1",
        params![user_id],
        |r| r.get(0),
    )?;
    if disabled {
        return Err(ApiError::forbidden(
            "user_disabled",
            "this account is disabled",
        ));
    }
    Ok(())
}

/// The user a verified identity names, creating it when the identity allows.
pub fn sign_in(conn: &Conn, org: &str, identity: &Identity) -> Result<User, ApiError> {
    match identity {
        Identity::ExistingId(id) => find_by(conn, org, "external_id", id)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "user_not_found",
                "no user with this id in the org",
            )
        }),
        // Only an email a sign-in token vouched for names a user, never one a visitor typed:
        // otherwise whoever registers a new hire's address first would receive their messages.
        // Case is ignored for ASCII letters only, on both backends (PostgreSQL's lower()
        // would otherwise fold by locale, making look-alike addresses equal).
        Identity::ExistingEmail(email) => conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND {folded} = lower(?2{c})
                     AND ephemeral = 0 AND email_verified = 1 ORDER BY created_at LIMIT 1",
                    folded = if conn.is_postgres() {
                        "lower(email COLLATE \"C\")"
                    } else {
                        "lower(email)"
                    },
                    c = if conn.is_postgres() {
                        " COLLATE \"C\""
                    } else {
                        ""
                    },
                ),
                params![org, email],
                user_from_row,
            )
            .optional()?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "user_not_found",
                    "no user with this email in the org",
                )
            }),
        Identity::Upsert {
            external_id,
            email,
            name,
            email_verified,
        } => {
            if let Some(mut user) = find_by(conn, org, "external_id", external_id)? {
                // Keep the directory current with what the site says of its user.
                if (email.is_some() && email != &user.email)
                    || (name.is_some() && name != &user.name)
                {
                    let verified = if email.is_some() {
                        *email_verified
                    } else {
                        // The email stays; so does whether it was vouched for.
                        conn.query_row(
                            "SELECT email_verified FROM users WHERE id = ?1",
                            params![user.id],
                            |r| r.get(0),
                        )?
                    };
                    user.email = email.clone().or(user.email);
                    user.name = name.clone().or(user.name);
                    conn.execute(
                        "UPDATE users SET email = ?1, name = ?2, email_verified = ?3 WHERE id = ?4",
                        params![user.email, user.name, verified, user.id],
                    )?;
                }
                return Ok(user);
            }
            Ok(create_user(
                conn,
                org,
                Some(external_id),
                email.as_deref(),
                name.as_deref(),
                false,
                *email_verified,
                Some(external_id),
            )?)
        }
    }
}

/// Deletes a user and everything the server holds for them: devices with their queues and
/// prekeys, identity, sessions, link requests, uploads and group memberships. Returns the
/// IDs of the uploads whose bytes are in the blob store, to delete once this commits.
/// Envelopes they sent that still wait in others' queues stay: they are the recipients'.
pub fn delete_user(tx: &Conn, user: &str) -> crate::db::Result<Vec<String>> {
    let stored: Vec<String> = {
        let mut stmt =
            tx.prepare("DELETE FROM blobs WHERE uploader = ?1 RETURNING id, in_store")?;
        let rows = stmt.query_map(params![user], |r| {
            Ok((r.get::<String>(0)?, r.get::<bool>(1)?))
        })?;
        rows.filter_map(|r| match r {
            Ok((id, true)) => Some(Ok(id)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?
    };
    tx.execute(
        "DELETE FROM group_members WHERE (org_id, member_tag) IN
             (SELECT org_id, tag FROM users WHERE id = ?1)",
        params![user],
    )?;
    let devices = "(SELECT id FROM devices WHERE user_id = ?1)";
    for sql in [
        format!("DELETE FROM envelopes WHERE device_id IN {devices}"),
        format!("DELETE FROM one_time_prekeys WHERE device_id IN {devices}"),
        format!("DELETE FROM signed_prekeys WHERE device_id IN {devices}"),
        format!("DELETE FROM prekey_claims WHERE device_id IN {devices}"),
        "DELETE FROM prekey_claims WHERE claimer = ?1".into(),
        "DELETE FROM devices WHERE user_id = ?1".into(),
        "DELETE FROM identities WHERE user_id = ?1".into(),
        "DELETE FROM link_requests WHERE user_id = ?1".into(),
        "DELETE FROM group_followers WHERE user_id = ?1".into(),
        "DELETE FROM sessions WHERE user_id = ?1".into(),
        "DELETE FROM users WHERE id = ?1".into(),
    ] {
        tx.execute(&sql, params![user])?;
    }
    Ok(stored)
}

/// Creates (or extends) a named group whose members are user tags.
pub fn add_group(conn: &Conn, org: &str, name: &str, members: &[String]) -> Result<(), ApiError> {
    if find_by(conn, org, "tag", name)?.is_some() {
        return Err(ApiError::bad_request(
            "tag_taken",
            format!("@{name} is a user's tag"),
        ));
    }
    conn.execute(
        "INSERT INTO group_tags (org_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![org, name],
    )?;
    for m in members {
        conn.execute(
            "INSERT INTO group_members (org_id, tag, member_tag) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![org, name, m.to_ascii_lowercase()],
        )?;
    }
    Ok(())
}

/// Makes a named group exactly `members` (the configuration is its source of truth: a tag
/// taken out of the file leaves the group at the next start). Returns whether it changed.
pub fn set_group(conn: &Conn, org: &str, name: &str, members: &[String]) -> Result<bool, ApiError> {
    let before = group_member_tags(conn, org, name)?;
    conn.execute(
        "DELETE FROM group_members WHERE org_id = ?1 AND tag = ?2",
        params![org, name],
    )?;
    add_group(conn, org, name, members)?;
    Ok(before != group_member_tags(conn, org, name)?)
}

/// How long a user's following of a group lasts without a new resolve of it: clients
/// resolve the groups they follow at every connection, so only the long gone lapse.
pub const FOLLOW_LAPSES_AFTER_SECS: i64 = 90 * 86_400;

/// Records that `user` follows `groups` (it resolved an expression naming them), so that it
/// hears when one changes. Written at most once an hour per group and user.
pub fn follow(conn: &Conn, org: &str, user: &str, groups: &[String]) -> crate::db::Result<()> {
    let now = crate::db::now_secs();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO group_followers (org_id, group_name, user_id, followed_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id, group_name, user_id) DO UPDATE SET followed_at = excluded.followed_at
         WHERE group_followers.followed_at < excluded.followed_at - 3600",
    )?;
    for group in groups {
        stmt.execute(params![org, group, user, now])?;
    }
    Ok(())
}

/// The member tags of the group `name`, sorted.
pub(crate) fn group_member_tags(
    conn: &Conn,
    org: &str,
    name: &str,
) -> crate::db::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_tag FROM group_members WHERE org_id = ?1 AND tag = ?2 ORDER BY member_tag",
    )?;
    let tags = stmt.query_map(params![org, name], |r| r.get(0))?;
    tags.collect()
}

/// Whether `org` has a group named `name`.
pub(crate) fn is_group(conn: &Conn, org: &str, name: &str) -> crate::db::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM group_tags WHERE org_id = ?1 AND name = ?2)",
        params![org, name],
        |r| r.get(0),
    )
}

/// The users a tag stands for: the user with that tag, or the members of that group who
/// have signed in; `None` when the tag is unknown.
fn tag_members(conn: &Conn, org: &str, tag: &str) -> crate::db::Result<Option<Vec<User>>> {
    if let Some(user) = find_by(conn, org, "tag", tag)? {
        return Ok(Some(vec![user]));
    }
    if !is_group(conn, org, tag)? {
        return Ok(None);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM users u JOIN group_members g ON g.org_id = u.org_id AND g.member_tag = u.tag
         WHERE g.org_id = ?1 AND g.tag = ?2",
        USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
    ))?;
    let users = stmt
        .query_map(params![org, tag], user_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(users))
}

/// What a visitor is shown of a user: the name, never the email.
pub fn for_visitor(mut user: User) -> User {
    user.email = None;
    user
}

/// Whether a visitor of `org` with tag `own_tag` may name `tag`: its own, one of the org's
/// `visitor_tags`, or a user in one of those groups.
pub fn visitor_may_name(
    conn: &Conn,
    org: &str,
    visitor_tags: &[String],
    own_tag: &str,
    tag: &str,
) -> crate::db::Result<bool> {
    let tag = tag.to_ascii_lowercase();
    if tag == own_tag || visitor_tags.contains(&tag) {
        return Ok(true);
    }
    for group in visitor_tags {
        if group_member_tags(conn, org, group)?.contains(&tag) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Resolves `input` for a visitor: only tags [`visitor_may_name`] allows, with one answer
/// for every other tag, whether it exists or not (no position, no name), and no emails.
pub fn resolve_for_visitor(
    conn: &Conn,
    org: &str,
    visitor_tags: &[String],
    own_tag: &str,
    input: &str,
) -> Result<Resolved, ApiError> {
    let parsed = expr::parse(input).map_err(|e| ApiError {
        position: Some(e.position),
        ..ApiError::bad_request("expr_syntax", e.to_string())
    })?;
    for tag in parsed.tags() {
        if !visitor_may_name(conn, org, visitor_tags, own_tag, tag)? {
            let offered: Vec<String> = visitor_tags.iter().map(|t| format!("@{t}")).collect();
            return Err(ApiError::bad_request(
                "tag_not_available",
                if offered.is_empty() {
                    "visitors cannot start conversations here".to_string()
                } else {
                    format!("visitors can write to {}", offered.join(", "))
                },
            ));
        }
    }
    let mut resolved = resolve(conn, org, input)?;
    resolved.users = resolved.users.into_iter().map(for_visitor).collect();
    Ok(resolved)
}

/// Resolves a thread expression to users, or an error that points at the fault.
pub fn resolve(conn: &Conn, org: &str, input: &str) -> Result<Resolved, ApiError> {
    let expr_error = |e: expr::ExprError, code| ApiError {
        position: Some(e.position),
        ..ApiError::bad_request(code, e.to_string())
    };
    let parsed = expr::parse(input).map_err(|e| expr_error(e, "expr_syntax"))?;
    let added = parsed.added_tags();
    let mut found: std::collections::BTreeMap<String, User> = Default::default();
    let ids: BTreeSet<String> = parsed.evaluate(&mut |tag, position| {
        let members = tag_members(conn, org, tag)
            .map_err(ApiError::from)?
            // Taking away someone who is gone (a deleted user) takes away no one.
            .or_else(|| (!added.contains(&tag)).then(Vec::new))
            .ok_or_else(|| {
                expr_error(
                    expr::ExprError {
                        position,
                        message: format!("unknown tag @{tag}"),
                    },
                    "expr_unknown_tag",
                )
            })?;
        Ok::<_, ApiError>(
            members
                .into_iter()
                .map(|u| {
                    let id = u.id.clone();
                    found.insert(id.clone(), u);
                    id
                })
                .collect(),
        )
    })?;
    let users: Vec<User> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
    let canonical = expr::canonical(users.iter().map(|u| u.tag.as_str()));
    let mut groups = Vec::new();
    for tag in parsed.tags() {
        if !groups.iter().any(|g| g == tag) && is_group(conn, org, tag)? {
            groups.push(tag.to_owned());
        }
    }
    Ok(Resolved {
        users,
        canonical,
        groups,
    })
}
