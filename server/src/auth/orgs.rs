//! The orgs a server signs people in to, as they are now: those of the configuration file
//! (and the demo's), plus what the admin API added at run time — orgs, sign-in keys and
//! visitor tokens, kept in the database so that every node and the CLI see them.
//!
//! Each node holds a snapshot and rebuilds it when a change mark in the database moved
//! (every change writes it). It looks after its own admin changes, every
//! [`RELOAD_EVERY`] (for changes made on other nodes or by the CLI), and when a token
//! names a key it has not heard of (at most once per [`UNKNOWN_KID_RELOAD`]), so a key
//! added anywhere signs people in everywhere within seconds.

use super::jwt::{OrgAuth, Orgs, VerifyingKey};
use crate::config::{KeyConfig, OrgConfig};
use crate::db::{Conn, Db};
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often a node re-reads what other nodes (or the CLI) changed.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// A token with an unknown `kid` re-reads the keys at most this often, so a flood of made-up
/// key IDs costs one query per interval.
pub const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(2);

/// The sign-in settings of an org created through the admin API (the file's orgs keep
/// theirs in the file).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visitor_tags: Vec<String>,
    /// Where the org's identity provider publishes its sign-in keys (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

impl OrgSettings {
    pub fn check(&self) -> Result<(), ApiError> {
        if let Some(url) = &self.jwks_url {
            if url.len() > 2048 {
                return Err(ApiError::bad_request("bad_setting", "jwks_url is too long"));
            }
            // Set through the API, a URL is https: an API key must not make the server
            // fetch from its own machine or network in the clear.
            crate::outbound::check_url(url, false)
                .map_err(|e| ApiError::bad_request("bad_setting", format!("jwks_url: {e}")))?;
        }
        if self.leeway_secs.is_some_and(|l| l > 60) {
            return Err(ApiError::bad_request(
                "bad_setting",
                "leeway_secs may be at most 60",
            ));
        }
        if self.audience.len() > 16
            || self.visitor_tags.len() > 64
            || self
                .audience
                .iter()
                .chain(&self.visitor_tags)
                .chain(&self.issuer)
                .any(|s| s.is_empty() || s.len() > 256)
        {
            return Err(ApiError::bad_request(
                "bad_setting",
                "at most 16 audiences and 64 visitor tags, each 1 to 256 bytes",
            ));
        }
        Ok(())
    }
}

/// The live set of orgs.
pub struct OrgDirectory {
    file: Vec<OrgConfig>,
    demo: Option<Vec<u8>>,
    current: RwLock<Arc<Orgs>>,
    /// The `orgs_changed` mark the snapshot was built at.
    built_at: Mutex<Option<i64>>,
    last_kid_reload: Mutex<Option<Instant>>,
    /// Each org's published keys, by org and URL.
    jwks: Mutex<std::collections::HashMap<(String, String), Arc<super::jwks::Jwks>>>,
    /// Per org, how many times an operator had its JWKS reloaded (`jwks_reload:<org>` in
    /// `server_marks`): a node whose copy is from an older round drops it and fetches anew.
    jwks_rounds: Mutex<std::collections::HashMap<String, i64>>,
    /// The round each cached JWKS was fetched in.
    jwks_held: Mutex<std::collections::HashMap<String, i64>>,
    /// When this node last reloaded each org's JWKS for an operator.
    jwks_reloaded: Mutex<std::collections::HashMap<String, Instant>>,
}

/// How often an operator may have one org's JWKS reloaded (per node).
const JWKS_RELOAD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(10);

impl OrgDirectory {
    /// Reads the database once; fails on a broken file org (a bad key), as start-up should.
    pub async fn load(
        db: &Db,
        file: Vec<OrgConfig>,
        demo: Option<Vec<u8>>,
    ) -> Result<OrgDirectory, String> {
        // The file's own keys are checked now, so a typo stops the start with a message.
        for org in &file {
            OrgAuth::from_config(org)?;
        }
        let dir = OrgDirectory {
            file,
            demo,
            current: RwLock::new(Arc::new(Orgs::default())),
            built_at: Mutex::new(None),
            last_kid_reload: Mutex::new(None),
            jwks: Default::default(),
            jwks_rounds: Default::default(),
            jwks_held: Default::default(),
            jwks_reloaded: Default::default(),
        };
        dir.reload(db).await.map_err(|e| e.message)?;
        Ok(dir)
    }

    /// The orgs as this node knows them now.
    pub fn current(&self) -> Arc<Orgs> {
        self.current.read().expect("orgs lock").clone()
    }

    /// Re-reads the database's orgs, keys and tokens, if they changed since the last time.
    pub async fn reload(&self, db: &Db) -> Result<(), ApiError> {
        let (file, demo) = (self.file.clone(), self.demo.clone());
        let seen = *self.built_at.lock().expect("orgs lock");
        let rebuilt = db
            .read(move |conn| {
                let now = version(conn)?;
                if seen == Some(now) {
                    return Ok::<_, ApiError>(None);
                }
                Ok(Some((
                    now,
                    build(conn, &file, demo.as_deref())?,
                    jwks_rounds(conn)?,
                )))
            })
            .await?;
        if let Some((at, orgs, rounds)) = rebuilt {
            *self.jwks_rounds.lock().expect("orgs lock") = rounds;
            *self.current.write().expect("orgs lock") = Arc::new(orgs);
            *self.built_at.lock().expect("orgs lock") = Some(at);
        }
        Ok(())
    }

    /// For a token whose `kid` this node does not know: re-reads the keys unless that was
    /// done a moment ago. Returns whether it did.
    pub async fn reload_for_unknown_kid(&self, db: &Db) -> bool {
        {
            let mut last = self.last_kid_reload.lock().expect("reload lock");
            if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_RELOAD) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.reload(db).await.is_ok()
    }

    /// Keeps this node's snapshot fresh.
    pub fn start_reloading(self: &Arc<Self>, db: Db) {
        let dir = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(dir) = dir.upgrade() else { return };
                if let Err(e) = dir.reload(&db).await {
                    tracing::warn!(error = %e.message, "re-reading the orgs failed");
                }
            }
        });
    }

    /// The keys `org` publishes at its `jwks_url` (none without one), fresh enough to
    /// verify `jwt` with.
    pub async fn published_keys(&self, org: &OrgAuth, jwt: &str) -> Vec<VerifyingKey> {
        let Some(url) = &org.jwks_url else {
            return vec![];
        };
        let jwks = self.jwks_of(org, url);
        jwks.keys(OrgAuth::kid_of(jwt).as_deref()).await
    }

    /// The cached JWKS of `org` at `url`: a new one when an operator reloaded the org's set
    /// since this one was fetched (on any node).
    fn jwks_of(&self, org: &OrgAuth, url: &str) -> Arc<super::jwks::Jwks> {
        let round = self
            .jwks_rounds
            .lock()
            .expect("jwks lock")
            .get(&org.id)
            .copied()
            .unwrap_or(0);
        let mut held = self.jwks_held.lock().expect("jwks lock");
        let mut cache = self.jwks.lock().expect("jwks lock");
        let key = (org.id.clone(), url.to_owned());
        if held.get(&org.id).is_some_and(|r| *r != round) {
            cache.remove(&key);
        }
        held.insert(org.id.clone(), round);
        cache
            .entry(key)
            .or_insert_with(|| Arc::new(super::jwks::Jwks::new(url.to_owned(), org.in_file)))
            .clone()
    }

    /// Fetches `org`'s JWKS now and keeps only what it lists (see `Jwks::reload`); the
    /// caller has recorded the new round, so other nodes drop their copies at their next
    /// reload of the orgs.
    pub async fn reload_jwks(
        &self,
        db: &Db,
        actor: &crate::admin::Actor,
        org: &str,
    ) -> Result<Vec<String>, ApiError> {
        {
            // Each reload fetches, writes and makes every node rebuild: one per 10 s per org.
            let mut last = self.jwks_reloaded.lock().expect("jwks lock");
            if let Some(at) = last.get(org) {
                let wait = JWKS_RELOAD_AT_MOST.saturating_sub(at.elapsed());
                if !wait.is_zero() {
                    return Err(ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "this org's JWKS was reloaded a moment ago",
                    )
                    .retry_after(wait.as_secs().max(1)));
                }
            }
            last.insert(org.to_owned(), Instant::now());
        }
        // The org as the database says now (its jwks_url may have changed on another node).
        self.reload(db).await?;
        let current = self.current();
        let auth = current.get(org)?;
        let Some(url) = auth.jwks_url.clone() else {
            return Err(ApiError::conflict(
                "no_jwks_url",
                format!("org {org} has no jwks_url"),
            ));
        };
        let fresh = super::jwks::Jwks::new(url.clone(), auth.in_file);
        let kids = fresh.reload().await.map_err(|e| ApiError {
            status: axum::http::StatusCode::BAD_GATEWAY,
            ..ApiError::bad_request(
                "jwks_unavailable",
                format!("the JWKS could not be fetched ({e}); the keys held are unchanged"),
            )
        })?;
        let (org_id, actor, listed) = (org.to_owned(), actor.clone(), kids.clone());
        let round = db
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO server_marks (name, value) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = server_marks.value + 1",
                    crate::params![format!("jwks_reload:{org_id}")],
                )?;
                let round: i64 = tx.query_row(
                    "SELECT value FROM server_marks WHERE name = ?1",
                    crate::params![format!("jwks_reload:{org_id}")],
                    |r| r.get(0),
                )?;
                changed(&tx)?;
                crate::admin::audit::record(
                    &tx,
                    &actor,
                    Some(&org_id),
                    "org.jwks_reload",
                    None,
                    serde_json::json!({ "kids": listed }),
                )?;
                tx.commit()?;
                Ok::<_, ApiError>(round)
            })
            .await?;
        // This node holds the set just fetched, as of the new round.
        self.jwks_rounds
            .lock()
            .expect("jwks lock")
            .insert(org.to_owned(), round);
        self.jwks_held
            .lock()
            .expect("jwks lock")
            .insert(org.to_owned(), round);
        self.jwks
            .lock()
            .expect("jwks lock")
            .insert((org.to_owned(), url), Arc::new(fresh));
        Ok(kids)
    }

    /// Whether the configuration file defines `org` (its settings are then the file's).
    pub fn in_file(&self, org: &str) -> bool {
        self.file.iter().any(|o| o.id == org)
            || (self.demo.is_some() && org == crate::routes::demo::DEMO_ORG)
    }
}

/// Marks, in the caller's transaction, that orgs, keys or tokens changed, so every node
/// rebuilds its snapshot at its next look (instead of re-parsing every key every time).
pub fn changed(conn: &Conn) -> crate::db::Result<()> {
    conn.execute(
        "INSERT INTO server_marks (name, value) VALUES ('orgs_changed', 1)
         ON CONFLICT (name) DO UPDATE SET value = server_marks.value + 1",
        crate::params![],
    )?;
    Ok(())
}

/// How many times each org's JWKS was reloaded by an operator.
fn jwks_rounds(conn: &Conn) -> crate::db::Result<std::collections::HashMap<String, i64>> {
    let mut stmt =
        conn.prepare("SELECT name, value FROM server_marks WHERE name LIKE 'jwks_reload:%'")?;
    let rows = stmt.query_map(crate::params![], |r| {
        Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
    })?;
    rows.map(|r| r.map(|(name, n)| (name["jwks_reload:".len()..].to_owned(), n)))
        .collect()
}

fn version(conn: &Conn) -> crate::db::Result<i64> {
    Ok(crate::db::OptionalExtension::optional(conn.query_row(
        "SELECT value FROM server_marks WHERE name = 'orgs_changed'",
        crate::params![],
        |r| r.get(0),
    ))?
    .unwrap_or(0))
}

/// A sign-in key from its stored form, checked as the file's keys are.
pub fn key_from_row(
    org: &str,
    kid: &str,
    alg: &str,
    material: &str,
) -> Result<VerifyingKey, String> {
    let hs = alg == "HS256";
    VerifyingKey::from_config(
        org,
        &KeyConfig {
            kid: Some(kid.to_owned()),
            alg: alg.to_owned(),
            secret: hs.then(|| material.to_owned()),
            secret_env: None,
            public_key_pem: (!hs).then(|| material.to_owned()),
            public_key_file: None,
        },
    )
}

fn build(conn: &Conn, file: &[OrgConfig], demo: Option<&[u8]>) -> Result<Orgs, ApiError> {
    let mut orgs = Orgs::default();
    for org in file {
        // Checked at start; a failure here would mean the file changed under us.
        let auth = OrgAuth::from_config(org).map_err(ApiError::internal)?;
        orgs.0.insert(org.id.clone(), auth);
    }
    if let Some(secret) = demo {
        orgs.0.insert(
            crate::routes::demo::DEMO_ORG.into(),
            crate::routes::demo::org(secret),
        );
    }
    let mut stmt =
        conn.prepare("SELECT id, name, settings FROM orgs WHERE settings IS NOT NULL")?;
    let rows: Vec<(String, Option<String>, String)> = stmt
        .query_map(crate::params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, name, settings) in rows {
        if orgs.0.contains_key(&id) {
            continue;
        }
        let settings: OrgSettings = serde_json::from_str(&settings).unwrap_or_default();
        orgs.0.insert(
            id.clone(),
            OrgAuth {
                id,
                name,
                keys: vec![],
                audience: settings.audience,
                issuer: settings.issuer,
                leeway: settings.leeway_secs.unwrap_or(30).min(60),
                ephemeral_tokens: vec![],
                visitor_token_hashes: vec![],
                in_file: false,
                jwks_url: settings.jwks_url,
                visitor_tags: settings
                    .visitor_tags
                    .iter()
                    .map(|t| t.trim_start_matches('@').to_ascii_lowercase())
                    .collect(),
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT org_id, kid, alg, material FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at",
    )?;
    let keys: Vec<(String, String, String, String)> = stmt
        .query_map(crate::params![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (org, kid, alg, material) in keys {
        let Some(auth) = orgs.0.get_mut(&org) else {
            continue;
        };
        // A kid of the file wins over one added later with the same name.
        if auth
            .keys
            .iter()
            .any(|k| k.kid.as_deref() == Some(kid.as_str()))
        {
            continue;
        }
        match key_from_row(&org, &kid, &alg, &material) {
            Ok(key) => auth.keys.push(key),
            Err(e) => tracing::warn!(org, kid, error = %e, "a stored sign-in key is unusable"),
        }
    }
    let mut stmt =
        conn.prepare("SELECT org_id, token_hash FROM visitor_tokens WHERE revoked_at IS NULL")?;
    let tokens: Vec<(String, String)> = stmt
        .query_map(crate::params![], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (org, hash) in tokens {
        if let Some(auth) = orgs.0.get_mut(&org) {
            auth.visitor_token_hashes.push(hash);
        }
    }
    Ok(orgs)
}
