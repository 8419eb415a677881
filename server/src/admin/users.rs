//! Users as the site's backend manages them: created (or updated) by external ID before
//! they ever sign in, listed and searched, disabled, deleted with what the server holds
//! for them, and exported.
//!
//! A user created here is the same user that a later sign-in names by that external ID,
//! or by that email (the backend vouches for it). Until their first device registers,
//! nothing can be encrypted to them: a thread with them works at once, but what is sent
//! before they join is not readable by them (their profile says `joined: false`).

use super::{audit, check_id, check_text, Actor, Scope};
use crate::db::{now_secs, Conn, OptionalExtension};
use crate::error::ApiError;
use crate::params;
use serde::{Deserialize, Serialize};

/// The largest `attributes` object, serialized.
pub const MAX_ATTRIBUTES: usize = 4 * 1024;
/// The most users one list call returns.
pub const MAX_LIST: u32 = 500;

/// A user as the admin API shows them.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AdminUser {
    /// Sotto's own ID (what clients see).
    pub id: String,
    /// The site's ID for them; visitors have none.
    pub external_id: Option<String>,
    pub tag: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub disabled: bool,
    pub ephemeral: bool,
    pub created_at: i64,
    /// Whether any device of theirs has registered: until then nothing can be encrypted to them.
    pub joined: bool,
    pub devices: i64,
}

const COLUMNS: &str = "id, external_id, tag, name, email, email_verified, attributes, disabled,
    ephemeral, created_at, (SELECT COUNT(*) FROM devices d WHERE d.user_id = users.id)";

fn from_row(r: &crate::db::Row<'_>) -> crate::db::Result<AdminUser> {
    let attributes: Option<String> = r.get(6)?;
    let devices: i64 = r.get(10)?;
    Ok(AdminUser {
        id: r.get(0)?,
        external_id: r.get(1)?,
        tag: r.get(2)?,
        name: r.get(3)?,
        email: r.get(4)?,
        email_verified: r.get(5)?,
        attributes: attributes
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default(),
        disabled: r.get(7)?,
        ephemeral: r.get(8)?,
        created_at: r.get(9)?,
        joined: devices > 0,
        devices,
    })
}

/// How a request names a user: the site's external ID, or Sotto's own ID (`by=id`, for
/// visitors, who have no external ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum By {
    #[default]
    External,
    Id,
}

/// The user `key` names in `org`, or `404 unknown_user`.
pub fn find(conn: &Conn, org: &str, key: &str, by: By) -> Result<AdminUser, ApiError> {
    let column = match by {
        By::External => "external_id",
        By::Id => "id",
    };
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE org_id = ?1 AND {column} = ?2"),
        params![org, key],
        from_row,
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("unknown_user", "no such user in this org"))
}

pub fn get(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    key: &str,
    by: By,
) -> Result<AdminUser, ApiError> {
    actor.require(org, Scope::Backend)?;
    super::orgs::require_org(conn, org)?;
    find(conn, org, key, by)
}

/// What an upsert sets; absent fields stay as they are (or are derived, for a new user).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserFields {
    pub email: Option<String>,
    pub name: Option<String>,
    /// Their `@tag` (lower case `a-z 0-9 _ .`, at most 32); default: made from the email
    /// or name, as at a first sign-in.
    pub tag: Option<String>,
    /// Whatever the site keeps with them (a JSON object, at most 4 KiB). Replaces the old.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether a sign-in may find them by this email (default true: the backend vouches).
    pub email_verified: Option<bool>,
}

/// A tag: 1 to 32 of a-z, 0-9, `_` and `.` (`400 bad_tag`).
pub(super) fn check_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty()
        || tag.len() > 32
        || !tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    {
        return Err(ApiError::bad_request(
            "bad_tag",
            "a tag is 1 to 32 of a-z, 0-9, '_' and '.'",
        ));
    }
    Ok(())
}

impl UserFields {
    fn check(&self) -> Result<Option<String>, ApiError> {
        if let Some(email) = &self.email {
            check_text("email", email, 256)?;
            if !email.contains('@') {
                return Err(ApiError::bad_request("bad_field", "email needs an @"));
            }
        }
        if let Some(name) = &self.name {
            check_text("name", name, 256)?;
        }
        if let Some(tag) = &self.tag {
            check_tag(tag)?;
        }
        let attributes = match &self.attributes {
            Some(a) => {
                let text = serde_json::to_string(a).map_err(ApiError::internal)?;
                if text.len() > MAX_ATTRIBUTES {
                    return Err(ApiError::bad_request(
                        "attributes_too_large",
                        format!("attributes are limited to {MAX_ATTRIBUTES} bytes of JSON"),
                    ));
                }
                Some(text)
            }
            None => None,
        };
        Ok(attributes)
    }
}

fn tag_taken_by_other(
    conn: &Conn,
    org: &str,
    tag: &str,
    user: Option<&str>,
) -> crate::db::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE org_id = ?1 AND tag = ?2 AND id <> ?3)
             OR EXISTS (SELECT 1 FROM group_tags WHERE org_id = ?1 AND name = ?2)",
        params![org, tag, user.unwrap_or("")],
        |r| r.get(0),
    )
}

/// Creates the user with this external ID, or updates them. Returns them and whether they
/// are new.
pub fn upsert(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    external_id: &str,
    fields: &UserFields,
) -> Result<(AdminUser, bool), ApiError> {
    actor.require(org, Scope::Backend)?;
    check_id("external ID", external_id)?;
    let attributes = fields.check()?;
    let tx = conn.transaction()?;
    super::orgs::require_org(&tx, org)?;
    let existing = find(&tx, org, external_id, By::External).ok();
    if let Some(tag) = &fields.tag {
        if tag_taken_by_other(&tx, org, tag, existing.as_ref().map(|u| u.id.as_str()))? {
            return Err(ApiError::conflict(
                "tag_taken",
                format!("@{tag} is another user's or a group's tag"),
            ));
        }
    }
    let verified = fields.email_verified.unwrap_or(true);
    let created = existing.is_none();
    let id = match existing {
        Some(user) => {
            if let Some(tag) = fields.tag.as_ref().filter(|t| **t != user.tag) {
                // Groups name members by tag: the memberships move with the tag, or the
                // next user to get the old tag would inherit them.
                tx.execute(
                    "UPDATE group_members SET member_tag = ?1 WHERE org_id = ?2 AND member_tag = ?3",
                    params![tag, org, user.tag],
                )?;
            }
            tx.execute(
                "UPDATE users SET email = COALESCE(?1, email), name = COALESCE(?2, name),
                     tag = COALESCE(?3, tag), attributes = COALESCE(?4, attributes),
                     email_verified = COALESCE(?5, email_verified)
                 WHERE id = ?6",
                params![
                    fields.email,
                    fields.name,
                    fields.tag,
                    attributes,
                    // A new email is vouched for (or not) anew; otherwise the flag stays.
                    (fields.email.is_some() || fields.email_verified.is_some()).then_some(verified),
                    user.id
                ],
            )?;
            user.id
        }
        None => {
            let user = crate::directory::create_user(
                &tx,
                org,
                Some(external_id),
                fields.email.as_deref(),
                fields.name.as_deref(),
                false,
                verified,
                fields.tag.as_deref().or(Some(external_id)),
            )?;
            if attributes.is_some() {
                tx.execute(
                    "UPDATE users SET attributes = ?1 WHERE id = ?2",
                    params![attributes, user.id],
                )?;
            }
            user.id
        }
    };
    let user = find(&tx, org, &id, By::Id)?;
    audit::record(
        &tx,
        actor,
        Some(org),
        if created {
            "user.create"
        } else {
            "user.update"
        },
        Some(&user.id),
        serde_json::json!({ "external_id": external_id }),
    )?;
    tx.commit()?;
    Ok((user, created))
}

/// One page of an org's users, by tag: those whose tag, name, email or external ID
/// contains `query` (ASCII case ignored), after the tag `after`.
pub fn list(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    query: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AdminUser>, ApiError> {
    actor.require(org, Scope::Backend)?;
    super::orgs::require_org(conn, org)?;
    if let Some(q) = query {
        check_text("q", q, 256)?;
    }
    // LIKE's wildcards in the query are matched as themselves.
    let pattern = query.map(|q| {
        let escaped: String = q
            .to_ascii_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("%{escaped}%")
    });
    let fold = |column: &str| {
        if conn.is_postgres() {
            format!("lower({column} COLLATE \"C\")")
        } else {
            format!("lower({column})")
        }
    };
    // Tags page in byte order on both backends (not by PostgreSQL's locale).
    let tag = if conn.is_postgres() {
        "tag COLLATE \"C\""
    } else {
        "tag"
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE org_id = ?1 AND {tag} > ?2
           AND (CAST(?3 AS TEXT) IS NULL OR {} LIKE ?3 ESCAPE '\\' OR {} LIKE ?3 ESCAPE '\\'
                OR {} LIKE ?3 ESCAPE '\\' OR {} LIKE ?3 ESCAPE '\\')
         ORDER BY {tag} LIMIT ?4",
        fold("tag"),
        fold("name"),
        fold("email"),
        fold("external_id"),
    );
    let mut stmt = conn.prepare(&sql)?;
    let users = stmt
        .query_map(
            params![org, after.unwrap_or(""), pattern, limit.clamp(1, MAX_LIST)],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

/// What a disable or delete must still do outside the database: end these sessions and
/// devices on every node, and delete these blobs' bytes.
#[derive(Debug, Default)]
pub struct Cut {
    pub user: Option<AdminUser>,
    pub sessions: Vec<Vec<u8>>,
    pub devices: Vec<String>,
    pub stored_blobs: Vec<String>,
}

fn sessions_and_devices(conn: &Conn, user: &str) -> crate::db::Result<(Vec<Vec<u8>>, Vec<String>)> {
    let mut stmt = conn.prepare("SELECT token_hash FROM sessions WHERE user_id = ?1")?;
    let sessions = stmt
        .query_map(params![user], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((sessions, crate::devices::ids_of(conn, user)?))
}

/// Disables (or enables again) a user. A disabled user cannot sign in, and their sessions
/// end at once; their devices, keys and queues stay, for when they are enabled again.
pub fn set_disabled(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    key: &str,
    by: By,
    disabled: bool,
) -> Result<Cut, ApiError> {
    actor.require(org, Scope::Backend)?;
    let tx = conn.transaction()?;
    let user = find(&tx, org, key, by)?;
    let (sessions, _) = sessions_and_devices(&tx, &user.id)?;
    tx.execute(
        "UPDATE users SET disabled = ?1 WHERE id = ?2",
        params![disabled, user.id],
    )?;
    if disabled {
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![user.id])?;
    }
    audit::record(
        &tx,
        actor,
        Some(org),
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        Some(&user.id),
        serde_json::Value::Null,
    )?;
    let user = find(&tx, org, &user.id, By::Id)?;
    tx.commit()?;
    Ok(Cut {
        user: Some(user),
        sessions: if disabled { sessions } else { vec![] },
        ..Cut::default()
    })
}

/// Deletes a user with their devices, queues, uploads, sessions and group memberships. The
/// audit log keeps that it happened (their IDs and tag); webhook events already queued
/// about them are still delivered.
pub fn delete(conn: &Conn, actor: &Actor, org: &str, key: &str, by: By) -> Result<Cut, ApiError> {
    actor.require(org, Scope::Backend)?;
    let tx = conn.transaction()?;
    let user = find(&tx, org, key, by)?;
    let (sessions, devices) = sessions_and_devices(&tx, &user.id)?;
    for device in &devices {
        crate::webhooks::emit_device(&tx, crate::webhooks::DEVICE_REMOVED, &user.id, device)?;
    }
    let stored_blobs = crate::directory::delete_user(&tx, &user.id)?;
    audit::record(
        &tx,
        actor,
        Some(org),
        "user.delete",
        Some(&user.id),
        serde_json::json!({ "external_id": user.external_id, "tag": user.tag }),
    )?;
    tx.commit()?;
    Ok(Cut {
        user: Some(user),
        sessions,
        devices,
        stored_blobs,
    })
}

/// Everything the server holds about a user, for a data-subject request. Messages are not
/// in it because the server has none it can read: only sealed envelopes waiting for
/// delivery, counted here.
pub fn export(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    key: &str,
    by: By,
) -> Result<serde_json::Value, ApiError> {
    actor.require(org, Scope::Backend)?;
    let user = find(conn, org, key, by)?;
    let rows =
        |sql: &str, f: &dyn Fn(&crate::db::Row<'_>) -> crate::db::Result<serde_json::Value>| {
            let mut stmt = conn.prepare(sql)?;
            stmt.query_map(params![user.id], f)?
                .collect::<crate::db::Result<Vec<_>>>()
        };
    let devices = rows(
        "SELECT id, name, created_at,
             (SELECT COUNT(*) FROM envelopes e WHERE e.device_id = d.id),
             (SELECT COALESCE(SUM(length(payload)), 0) FROM envelopes e WHERE e.device_id = d.id),
             (SELECT COUNT(*) FROM one_time_prekeys k WHERE k.device_id = d.id)
         FROM devices d WHERE user_id = ?1 ORDER BY created_at",
        &|r| {
            Ok(serde_json::json!({
                "id": r.get::<String>(0)?,
                "name": r.get::<Option<String>>(1)?,
                "created_at": r.get::<i64>(2)?,
                "queued_envelopes": r.get::<i64>(3)?,
                "queued_bytes": r.get::<i64>(4)?,
                "one_time_prekeys": r.get::<i64>(5)?,
            }))
        },
    )?;
    let sessions = rows(
        "SELECT expires_at FROM sessions WHERE user_id = ?1 ORDER BY expires_at",
        &|r| Ok(serde_json::json!({ "expires_at": r.get::<i64>(0)? })),
    )?;
    let uploads = rows(
        "SELECT id, size, created_at FROM blobs WHERE uploader = ?1 ORDER BY created_at",
        &|r| {
            Ok(serde_json::json!({
                "id": r.get::<String>(0)?, "size": r.get::<i64>(1)?, "created_at": r.get::<i64>(2)?,
            }))
        },
    )?;
    let identity = rows(
        "SELECT version, updated_at FROM identities WHERE user_id = ?1",
        &|r| {
            Ok(
                serde_json::json!({ "device_list_version": r.get::<i64>(0)?, "updated_at": r.get::<i64>(1)? }),
            )
        },
    )?;
    let mut stmt = conn.prepare(
        "SELECT tag FROM group_members WHERE org_id = ?1 AND member_tag = ?2 ORDER BY tag",
    )?;
    let groups: Vec<String> = stmt
        .query_map(params![org, user.tag], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let sent_waiting: i64 = conn.query_row(
        "SELECT COUNT(*) FROM envelopes WHERE sender_user = ?1",
        params![user.id],
        |r| r.get(0),
    )?;
    Ok(serde_json::json!({
        "exported_at": now_secs(),
        "org": org,
        "user": user,
        "devices": devices,
        "sessions": sessions,
        "identity": identity.into_iter().next(),
        "groups": groups,
        "uploads": uploads,
        "envelopes_sent_awaiting_delivery": sent_waiting,
    }))
}
