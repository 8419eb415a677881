//! Named groups (`@support`): made, renamed, deleted, and their members (user tags)
//! added and removed at run time. Groups of the configuration file are set from the file
//! at each start, so they are changed there, not here.

use super::{audit, Actor, Scope};
use crate::db::Conn;
use crate::directory::{group_member_tags as members, is_group as exists, tag_taken};
use crate::error::ApiError;
use crate::params;
use serde::Serialize;

/// The most members one group may have.
pub const MAX_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Group {
    pub name: String,
    /// Member tags; they may name users who have not signed in (or been created) yet.
    pub members: Vec<String>,
}

/// A group after a change (`None` once deleted), and the devices to tell of it.
#[derive(Debug, Default)]
pub struct Changed {
    pub group: Option<Group>,
    /// When the group lost someone, or was renamed or deleted: every device of its members
    /// before and after, and of the users who follow it. Their threads that name the group
    /// resolve it again and drop whoever it lost, rotating their sender keys.
    pub devices: Vec<String>,
}

/// The devices of the users with these tags in `org`, and of those who follow `group`.
fn devices_to_tell(
    conn: &Conn,
    org: &str,
    group: &str,
    tags: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT d.id FROM devices d JOIN users u ON u.id = d.user_id
         WHERE u.org_id = ?1 AND u.tag = ?2",
    )?;
    for tag in tags {
        let rows = stmt.query_map(params![org, tag], |r| r.get::<String>(0))?;
        for id in rows {
            out.push(id?);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.id FROM devices d JOIN group_followers f ON f.user_id = d.user_id
         WHERE f.org_id = ?1 AND f.group_name = ?2",
    )?;
    for id in stmt.query_map(params![org, group], |r| r.get::<String>(0))? {
        out.push(id?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A group name or member tag as given (`@Support` too), in the form tags are kept.
fn check_name(tag: &str) -> Result<String, ApiError> {
    let tag = tag.trim_start_matches('@').to_ascii_lowercase();
    super::users::check_tag(&tag)?;
    Ok(tag)
}

fn require(conn: &Conn, org: &str, name: &str) -> Result<(), ApiError> {
    if exists(conn, org, name)? {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "unknown_group",
            format!("no group @{name} in this org"),
        ))
    }
}

pub fn list(conn: &Conn, actor: &Actor, org: &str) -> Result<Vec<Group>, ApiError> {
    actor.require(org, Scope::Backend)?;
    super::orgs::require_org(conn, org)?;
    let mut stmt = conn.prepare("SELECT name FROM group_tags WHERE org_id = ?1 ORDER BY name")?;
    let names: Vec<String> = stmt
        .query_map(params![org], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|name| {
            Ok(Group {
                members: members(conn, org, &name)?,
                name,
            })
        })
        .collect()
}

pub fn get(conn: &Conn, actor: &Actor, org: &str, name: &str) -> Result<Group, ApiError> {
    actor.require(org, Scope::Backend)?;
    let name = check_name(name)?;
    require(conn, org, &name)?;
    Ok(Group {
        members: members(conn, org, &name)?,
        name,
    })
}

/// The ways a group changes.
#[derive(Debug, Clone)]
pub enum Change {
    /// Make it (if new) with exactly these members.
    Set(Vec<String>),
    Add(Vec<String>),
    Remove(Vec<String>),
    Rename(String),
    Delete,
}

/// Applies `change` to the group `name` of `org`. `in_file` says the configuration file
/// defines this group (then it is refused: the file would undo it at the next start).
pub fn change(
    conn: &Conn,
    actor: &Actor,
    org: &str,
    name: &str,
    in_file: bool,
    change: Change,
) -> Result<Changed, ApiError> {
    actor.require(org, Scope::Backend)?;
    let name = check_name(name)?;
    if in_file {
        return Err(ApiError::conflict(
            "group_in_config",
            format!("@{name} is defined in the server's configuration file: change it there"),
        ));
    }
    let tx = conn.transaction()?;
    super::orgs::require_org(&tx, org)?;
    let before = if exists(&tx, org, &name)? {
        members(&tx, org, &name)?
    } else if matches!(change, Change::Set(_)) {
        vec![]
    } else {
        return Err(ApiError::not_found(
            "unknown_group",
            format!("no group @{name} in this org"),
        ));
    };
    let tags = |list: &[String]| -> Result<Vec<String>, ApiError> {
        if list.len() > MAX_MEMBERS {
            return Err(ApiError::bad_request(
                "too_many_members",
                format!("a group has at most {MAX_MEMBERS} members"),
            ));
        }
        list.iter().map(|t| check_name(t)).collect()
    };
    let (action, mut after_name) = match &change {
        Change::Set(_) => ("group.set", name.clone()),
        Change::Add(_) => ("group.add_members", name.clone()),
        Change::Remove(_) => ("group.remove_members", name.clone()),
        Change::Rename(new) => ("group.rename", check_name(new)?),
        Change::Delete => ("group.delete", name.clone()),
    };
    match &change {
        Change::Set(list) => {
            let list = tags(list)?;
            crate::directory::set_group(&tx, org, &name, &list)?;
        }
        Change::Add(list) => {
            let list = tags(list)?;
            if before.len() + list.len() > MAX_MEMBERS {
                return Err(ApiError::bad_request(
                    "too_many_members",
                    format!("a group has at most {MAX_MEMBERS} members"),
                ));
            }
            crate::directory::add_group(&tx, org, &name, &list)?;
        }
        Change::Remove(list) => {
            for tag in tags(list)? {
                tx.execute(
                    "DELETE FROM group_members WHERE org_id = ?1 AND tag = ?2 AND member_tag = ?3",
                    params![org, name, tag],
                )?;
            }
        }
        Change::Rename(_) => {
            if tag_taken(&tx, org, &after_name)? {
                return Err(ApiError::conflict(
                    "tag_taken",
                    format!("@{after_name} is taken by a user or another group"),
                ));
            }
            tx.execute(
                "INSERT INTO group_tags (org_id, name) VALUES (?1, ?2)",
                params![org, after_name],
            )?;
            tx.execute(
                "UPDATE group_members SET tag = ?3 WHERE org_id = ?1 AND tag = ?2",
                params![org, name, after_name],
            )?;
            tx.execute(
                "DELETE FROM group_tags WHERE org_id = ?1 AND name = ?2",
                params![org, name],
            )?;
        }
        Change::Delete => {
            tx.execute(
                "DELETE FROM group_members WHERE org_id = ?1 AND tag = ?2",
                params![org, name],
            )?;
            tx.execute(
                "DELETE FROM group_tags WHERE org_id = ?1 AND name = ?2",
                params![org, name],
            )?;
        }
    }
    let after = if matches!(change, Change::Delete) {
        vec![]
    } else {
        members(&tx, org, &after_name)?
    };
    audit::record(
        &tx,
        actor,
        Some(org),
        action,
        Some(&name),
        serde_json::json!({ "before": before, "after": after, "name": after_name }),
    )?;
    // Only a loss concerns existing threads (no one joins one through a group), so only a
    // loss, a rename or a deletion is told.
    let lost = before.iter().any(|t| !after.contains(t))
        || matches!(change, Change::Rename(_) | Change::Delete);
    let devices = if lost {
        let everyone: Vec<String> = before.iter().chain(&after).cloned().collect();
        devices_to_tell(&tx, org, &name, &everyone)?
    } else {
        vec![]
    };
    if matches!(change, Change::Rename(_) | Change::Delete) {
        // Threads that followed the old name keep their members from now on.
        tx.execute(
            "DELETE FROM group_followers WHERE org_id = ?1 AND group_name = ?2",
            params![org, name],
        )?;
    }
    tx.commit()?;
    if matches!(change, Change::Delete) {
        after_name.clear();
    }
    Ok(Changed {
        group: (!after_name.is_empty()).then_some(Group {
            name: after_name,
            members: after,
        }),
        devices,
    })
}
