//! `sotto-server admin <noun> <verb>`: every admin API operation from the command line.
//!
//! Each command becomes one admin API request. With `--url` (and `--api-key`) it goes to
//! a running server; without, it is answered in this process by the same routes, on the
//! configured database, as the operator (`cli:<login>` in the audit log). Either way the
//! validation, the audit log and the answer are the API's own. A local disable or delete
//! ends the user's sessions in the database; running nodes close their sockets at their
//! next check (within `bus_sweep_secs` with a bus, at most 30 s without).

use crate::config::Config;
use axum::body::Body;
use axum::http::{Method, Request};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// A running server's base URL (`https://chat.example.com`); default: work on the
    /// configured database directly.
    #[arg(long, env = "SOTTO_ADMIN_URL")]
    pub url: Option<String>,
    /// The API key for `--url` (better given as SOTTO_API_KEY than on the command line).
    #[arg(long, env = "SOTTO_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON answer, for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub noun: Noun,
}

#[derive(Debug, Subcommand)]
pub enum Noun {
    /// Tenants: list, show, create, configure.
    #[command(subcommand)]
    Orgs(OrgCmd),
    /// Users, before and after they sign in.
    #[command(subcommand)]
    Users(UserCmd),
    /// Named groups (@support) and their members.
    #[command(subcommand)]
    Groups(GroupCmd),
    /// The keys an org's sign-in JWTs are signed with.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(SigningKeyCmd),
    /// Tokens that let anonymous visitors sign in.
    #[command(subcommand, name = "visitor-tokens")]
    VisitorTokens(VisitorTokenCmd),
    /// Keys for the admin API.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeyCmd),
    /// URLs the org's backend is told things at (signed with HMAC-SHA256).
    #[command(subcommand)]
    Webhooks(WebhookCmd),
    /// Who changed what, newest first.
    Audit {
        /// The org's log; without it, the operator's (orgs, operator keys).
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        before_ms: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Every org (an operator), or the key's own.
    List,
    /// One org, with its settings and user count.
    Get { org: String },
    /// A new org beside the file's (an operator).
    Create {
        org: String,
        #[arg(long)]
        name: Option<String>,
        /// Sign-in settings as JSON: {"audience": [...], "issuer": "...", "leeway_secs": 30, "visitor_tags": [...]}
        #[arg(long)]
        settings: Option<String>,
    },
    /// Rename an org made here, or replace its settings.
    Configure {
        org: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        settings: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UserRef {
    pub org: String,
    /// The site's external ID (or, with --by-id, Sotto's user ID).
    pub user: String,
    /// USER is Sotto's own ID (visitors have no external ID).
    #[arg(long)]
    pub by_id: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// The org's users by tag, a page at a time.
    List {
        org: String,
        /// Part of a tag, name, email or external ID.
        #[arg(long)]
        q: Option<String>,
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One user.
    Get(UserRef),
    /// Creates the user with this external ID, or updates them.
    Upsert {
        org: String,
        external_id: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// A JSON object the site keeps with them.
        #[arg(long)]
        attributes: Option<String>,
        /// The email is contact information only: no sign-in finds them by it.
        #[arg(long)]
        email_unverified: bool,
    },
    /// Refuse their sign-in and end their sessions at once.
    Disable(UserRef),
    /// Let a disabled user sign in again.
    Enable(UserRef),
    /// Delete the user with their devices, queues, uploads and sessions.
    Delete(UserRef),
    /// Everything the server holds about them (no message content: it has none).
    Export(UserRef),
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// The org's groups with their members.
    List { org: String },
    /// One group.
    Get { org: String, name: String },
    /// Makes the group (if new) with exactly these member tags.
    Set {
        org: String,
        name: String,
        members: Vec<String>,
    },
    /// Add member tags.
    Add {
        org: String,
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Take one member out.
    Remove {
        org: String,
        name: String,
        member: String,
    },
    /// Give the group another name.
    Rename {
        org: String,
        name: String,
        new_name: String,
    },
    /// Delete the group.
    Delete { org: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCmd {
    /// Keys added at run time (the file's are in the file).
    List { org: String },
    /// A key the org's JWTs may be signed with, by kid.
    Add {
        org: String,
        #[arg(long)]
        kid: String,
        /// HS256, RS256, ES256 or EdDSA.
        #[arg(long)]
        alg: String,
        /// PEM public key file (RS256, ES256, EdDSA).
        #[arg(long)]
        public_key_file: Option<std::path::PathBuf>,
        /// Environment variable holding the HS256 secret (never on the command line).
        #[arg(long)]
        secret_env: Option<String>,
    },
    /// Tokens signed with it stop signing anyone in.
    Retire { org: String, kid: String },
    /// Fetch the org's JWKS now and honour only the keys it lists (after the identity
    /// provider dropped a compromised key), on every node.
    ReloadJwks { org: String },
}

#[derive(Debug, Subcommand)]
pub enum VisitorTokenCmd {
    /// Tokens made here, without their secrets.
    List { org: String },
    /// A new token, shown once.
    Add {
        org: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// No new visitor signs in with it.
    Revoke { org: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Webhooks, with deliveries waiting and the last error.
    List { org: String },
    /// A new webhook; its signing secret is shown once.
    Create {
        org: String,
        url: String,
        /// Events to send (repeatable): message.queued_for_offline_user, user.created,
        /// device.added, device.removed.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
    },
    /// Delete it and what it still had to deliver.
    Delete { org: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// The org's keys; without --org, the operator keys.
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// A new key, shown once. Without --org: an operator key, for every org.
    Create {
        #[arg(long)]
        org: Option<String>,
        /// admin or backend.
        #[arg(long)]
        scope: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// It stops working at once, on every node.
    Revoke { id: String },
}

/// One admin API request.
#[derive(Debug, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

fn seg(s: &str) -> String {
    // Path segments are percent-encoded: an external ID may hold '/' or '?'.
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", seg(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn parse_json(what: &str, text: &Option<String>) -> Result<Option<Value>, String> {
    text.as_ref()
        .map(|t| serde_json::from_str(t).map_err(|e| format!("{what} is not JSON: {e}")))
        .transpose()
}

impl Noun {
    /// The request this command makes.
    pub fn call(&self) -> Result<Call, String> {
        use Method as M;
        let c = |method: Method, path: String, body: Option<Value>| Ok(Call { method, path, body });
        let user = |r: &UserRef, tail: &str| {
            format!(
                "/v1/admin/orgs/{}/users/{}{tail}{}",
                seg(&r.org),
                seg(&r.user),
                if r.by_id { "?by=id" } else { "" }
            )
        };
        match self {
            Noun::Orgs(cmd) => match cmd {
                OrgCmd::List => c(M::GET, "/v1/admin/orgs".into(), None),
                OrgCmd::Get { org } => c(M::GET, format!("/v1/admin/orgs/{}", seg(org)), None),
                OrgCmd::Create {
                    org,
                    name,
                    settings,
                } => c(
                    M::POST,
                    "/v1/admin/orgs".into(),
                    Some(
                        json!({ "id": org, "name": name, "settings": parse_json("--settings", settings)? }),
                    ),
                ),
                OrgCmd::Configure {
                    org,
                    name,
                    settings,
                } => c(
                    M::PATCH,
                    format!("/v1/admin/orgs/{}", seg(org)),
                    Some(json!({ "name": name, "settings": parse_json("--settings", settings)? })),
                ),
            },
            Noun::Users(cmd) => match cmd {
                UserCmd::List {
                    org,
                    q,
                    after,
                    limit,
                } => c(
                    M::GET,
                    format!(
                        "/v1/admin/orgs/{}/users{}",
                        seg(org),
                        query(&[
                            ("q", q.clone()),
                            ("after", after.clone()),
                            ("limit", limit.map(|l| l.to_string()))
                        ])
                    ),
                    None,
                ),
                UserCmd::Get(r) => c(M::GET, user(r, ""), None),
                UserCmd::Upsert {
                    org,
                    external_id,
                    email,
                    name,
                    tag,
                    attributes,
                    email_unverified,
                } => {
                    let mut body = json!({ "email": email, "name": name, "tag": tag });
                    if let Some(a) = parse_json("--attributes", attributes)? {
                        body["attributes"] = a;
                    }
                    if *email_unverified {
                        body["email_verified"] = json!(false);
                    }
                    c(
                        M::PUT,
                        format!("/v1/admin/orgs/{}/users/{}", seg(org), seg(external_id)),
                        Some(body),
                    )
                }
                UserCmd::Disable(r) => c(M::POST, user(r, "/disable"), None),
                UserCmd::Enable(r) => c(M::POST, user(r, "/enable"), None),
                UserCmd::Delete(r) => c(M::DELETE, user(r, ""), None),
                UserCmd::Export(r) => c(M::GET, user(r, "/export"), None),
            },
            Noun::Groups(cmd) => {
                let group = |org: &str, name: &str| {
                    format!("/v1/admin/orgs/{}/groups/{}", seg(org), seg(name))
                };
                match cmd {
                    GroupCmd::List { org } => {
                        c(M::GET, format!("/v1/admin/orgs/{}/groups", seg(org)), None)
                    }
                    GroupCmd::Get { org, name } => c(M::GET, group(org, name), None),
                    GroupCmd::Set { org, name, members } => c(
                        M::PUT,
                        group(org, name),
                        Some(json!({ "members": members })),
                    ),
                    GroupCmd::Add { org, name, members } => c(
                        M::POST,
                        format!("{}/members", group(org, name)),
                        Some(json!({ "members": members })),
                    ),
                    GroupCmd::Remove { org, name, member } => c(
                        M::DELETE,
                        format!("{}/members/{}", group(org, name), seg(member)),
                        None,
                    ),
                    GroupCmd::Rename {
                        org,
                        name,
                        new_name,
                    } => c(
                        M::PATCH,
                        group(org, name),
                        Some(json!({ "name": new_name })),
                    ),
                    GroupCmd::Delete { org, name } => c(M::DELETE, group(org, name), None),
                }
            }
            Noun::SigningKeys(cmd) => match cmd {
                SigningKeyCmd::List { org } => c(
                    M::GET,
                    format!("/v1/admin/orgs/{}/signing-keys", seg(org)),
                    None,
                ),
                SigningKeyCmd::Add {
                    org,
                    kid,
                    alg,
                    public_key_file,
                    secret_env,
                } => {
                    let mut body = json!({ "kid": kid, "alg": alg });
                    match (public_key_file, secret_env) {
                        (Some(file), None) => {
                            body["public_key_pem"] = json!(std::fs::read_to_string(file)
                                .map_err(|e| format!("cannot read {}: {e}", file.display()))?);
                        }
                        (None, Some(var)) => {
                            body["secret"] = json!(std::env::var(var)
                                .map_err(|_| format!("environment variable {var} is not set"))?);
                        }
                        _ => {
                            return Err(
                                "give exactly one of --public-key-file or --secret-env".into()
                            )
                        }
                    }
                    c(
                        M::POST,
                        format!("/v1/admin/orgs/{}/signing-keys", seg(org)),
                        Some(body),
                    )
                }
                SigningKeyCmd::Retire { org, kid } => c(
                    M::DELETE,
                    format!("/v1/admin/orgs/{}/signing-keys/{}", seg(org), seg(kid)),
                    None,
                ),
                SigningKeyCmd::ReloadJwks { org } => c(
                    M::POST,
                    format!("/v1/admin/orgs/{}/jwks/reload", seg(org)),
                    None,
                ),
            },
            Noun::VisitorTokens(cmd) => match cmd {
                VisitorTokenCmd::List { org } => c(
                    M::GET,
                    format!("/v1/admin/orgs/{}/visitor-tokens", seg(org)),
                    None,
                ),
                VisitorTokenCmd::Add { org, name } => c(
                    M::POST,
                    format!("/v1/admin/orgs/{}/visitor-tokens", seg(org)),
                    Some(json!({ "name": name })),
                ),
                VisitorTokenCmd::Revoke { org, id } => c(
                    M::DELETE,
                    format!("/v1/admin/orgs/{}/visitor-tokens/{}", seg(org), seg(id)),
                    None,
                ),
            },
            Noun::Webhooks(cmd) => match cmd {
                WebhookCmd::List { org } => c(
                    M::GET,
                    format!("/v1/admin/orgs/{}/webhooks", seg(org)),
                    None,
                ),
                WebhookCmd::Create { org, url, events } => c(
                    M::POST,
                    format!("/v1/admin/orgs/{}/webhooks", seg(org)),
                    Some(json!({ "url": url, "events": events })),
                ),
                WebhookCmd::Delete { org, id } => c(
                    M::DELETE,
                    format!("/v1/admin/orgs/{}/webhooks/{}", seg(org), seg(id)),
                    None,
                ),
            },
            Noun::ApiKeys(cmd) => {
                let base = |org: &Option<String>| match org {
                    Some(org) => format!("/v1/admin/orgs/{}/api-keys", seg(org)),
                    None => "/v1/admin/api-keys".into(),
                };
                match cmd {
                    ApiKeyCmd::List { org } => c(M::GET, base(org), None),
                    ApiKeyCmd::Create { org, scope, name } => c(
                        M::POST,
                        base(org),
                        Some(json!({ "scope": scope, "name": name })),
                    ),
                    ApiKeyCmd::Revoke { id } => {
                        c(M::DELETE, format!("/v1/admin/api-keys/{}", seg(id)), None)
                    }
                }
            }
            Noun::Audit {
                org,
                limit,
                before_ms,
            } => c(
                M::GET,
                format!(
                    "{}{}",
                    match org {
                        Some(org) => format!("/v1/admin/orgs/{}/audit", seg(org)),
                        None => "/v1/admin/audit".into(),
                    },
                    query(&[
                        ("limit", limit.map(|l| l.to_string())),
                        ("before_ms", before_ms.map(|b| b.to_string()))
                    ])
                ),
                None,
            ),
        }
    }
}

/// Marks a request as the CLI's own, made in this process. Only code can add a request
/// extension, so nothing arriving over the network can carry it.
#[derive(Clone)]
pub struct LocalOperator;

/// Runs one admin command and prints its answer; returns the process's exit code.
pub async fn run(config: Config, args: AdminArgs) -> i32 {
    let call = match args.noun.call() {
        Ok(call) => call,
        Err(e) => {
            eprintln!("sotto-server admin: {e}");
            return 2;
        }
    };
    let answer = match &args.url {
        Some(url) => remote(url, args.api_key.as_deref(), &call).await,
        None => local(config, &call).await,
    };
    match answer {
        Ok((status, body)) => {
            let ok = status < 400;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
            } else if ok {
                print_for_people(&body);
            } else {
                let code = body["error"]["code"].as_str().unwrap_or("error");
                let message = body["error"]["message"]
                    .as_str()
                    .unwrap_or("the request failed");
                eprintln!("sotto-server admin: {message} ({code}, HTTP {status})");
            }
            if ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("sotto-server admin: {e}");
            1
        }
    }
}

async fn remote(base: &str, key: Option<&str>, call: &Call) -> Result<(u16, Value), String> {
    let key = key.ok_or("--url needs an API key: set SOTTO_API_KEY (or --api-key)")?;
    if let Some(rest) = base.strip_prefix("http://") {
        if !["127.0.0.1", "[::1]", "localhost"]
            .iter()
            .any(|h| rest.starts_with(h))
        {
            eprintln!("sotto-server admin: warning: {base} is not https, so the API key crosses the network in the clear");
        }
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}{}", base.trim_end_matches('/'), call.path);
    let mut request = client.request(call.method.clone(), &url).bearer_auth(key);
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).map_err(|_| {
        format!("{base} answered HTTP {status} without JSON: is it a sotto-server?")
    })?;
    Ok((status, body))
}

async fn local(mut config: Config, call: &Call) -> Result<(u16, Value), String> {
    // The server's database, never a new one made by a mistyped path or a missing --config.
    if let crate::db::Location::Sqlite(path) = &config.database {
        if !path.exists() {
            return Err(format!(
                "no database at {}: give the server's --config (or --database), and start the \
                 server once first",
                path.display()
            ));
        }
    }
    eprintln!("sotto-server admin: on the database {}", config.database);
    // The nodes learn from the database; this process serves no sockets, verifies no
    // token (so needs none of the file's keys) and leaves start-up's writes to the server.
    config.bus = None;
    config.admin_cli = true;
    for org in &mut config.orgs {
        org.keys.clear();
    }
    let state = crate::build_state(config).await?;
    let app = crate::app(state.clone());
    let mut request = Request::builder()
        .method(call.method.clone())
        .uri(&call.path)
        .header("content-type", "application/json")
        .extension(LocalOperator)
        .body(match &call.body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .map_err(|e| e.to_string())?;
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    let response = tower::ServiceExt::oneshot(app, request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

/// A readable form of an answer: lists as aligned lines, secrets with a warning.
fn print_for_people(body: &Value) {
    for (list, columns) in [
        ("orgs", &["id", "name", "users", "in_file"][..]),
        (
            "users",
            &["tag", "external_id", "name", "email", "joined", "disabled"][..],
        ),
        ("groups", &["name", "members"][..]),
        ("keys", &["kid", "alg", "created_at", "retired_at"][..]),
        ("tokens", &["id", "name", "created_at", "revoked_at"][..]),
        (
            "api_keys",
            &["id", "org", "scope", "name", "revoked_at", "last_used_at"][..],
        ),
        ("entries", &["at_ms", "actor", "action", "target"][..]),
        (
            "webhooks",
            &["id", "url", "events", "pending", "last_error"][..],
        ),
    ] {
        if let Some(items) = body.get(list).and_then(Value::as_array) {
            if items.is_empty() {
                println!("(no {list})");
            }
            for item in items {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| match &item[*c] {
                        Value::Null => "-".into(),
                        Value::String(s) => s.clone(),
                        Value::Array(a) => a
                            .iter()
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                        v => v.to_string(),
                    })
                    .collect();
                println!("{}", cells.join("\t"));
            }
            if let Some(next) = body.get("next_after").and_then(Value::as_str) {
                println!("(more: --after {next})");
            }
            return;
        }
    }
    for secret in ["key", "token", "secret"] {
        if body.get(secret).is_some_and(Value::is_string) {
            println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
            eprintln!("sotto-server admin: store the {secret} above now: it is not shown again");
            return;
        }
    }
    println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        noun: Noun,
    }

    fn call(args: &[&str]) -> Call {
        let mut all = vec!["t"];
        all.extend_from_slice(args);
        T::try_parse_from(all).unwrap().noun.call().unwrap()
    }

    /// Every command is one request of the API; odd characters in IDs stay in their segment.
    #[test]
    fn commands_become_admin_api_requests() {
        let c = call(&[
            "users", "upsert", "acme", "a/b?c", "--email", "x@y", "--tag", "ann",
        ]);
        assert_eq!(c.method, Method::PUT);
        assert_eq!(c.path, "/v1/admin/orgs/acme/users/a%2Fb%3Fc");
        assert_eq!(c.body.unwrap()["tag"], "ann");
        let c = call(&["users", "disable", "acme", "u_1", "--by-id"]);
        assert_eq!(c.path, "/v1/admin/orgs/acme/users/u_1/disable?by=id");
        let c = call(&["groups", "remove", "acme", "support", "bob"]);
        assert_eq!(
            (c.method, c.path.as_str()),
            (
                Method::DELETE,
                "/v1/admin/orgs/acme/groups/support/members/bob"
            )
        );
        let c = call(&["signing-keys", "reload-jwks", "acme"]);
        assert_eq!(
            (c.method, c.path.as_str()),
            (Method::POST, "/v1/admin/orgs/acme/jwks/reload")
        );
        let c = call(&["api-keys", "create", "--scope", "admin"]);
        assert_eq!(c.path, "/v1/admin/api-keys");
        let c = call(&["users", "list", "acme", "--q", "a b", "--limit", "5"]);
        assert_eq!(c.path, "/v1/admin/orgs/acme/users?q=a%20b&limit=5");
        let err = T::try_parse_from(["t", "orgs", "create", "x", "--settings", "{"])
            .unwrap()
            .noun
            .call()
            .unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }
}
