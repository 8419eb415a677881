//! Configuration: a TOML file (`--config`), then environment variables (`SOTTO_*`), then
//! command-line flags, each overriding the one before. See the README for every field.

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser, Default)]
#[command(
    name = "sotto-server",
    version,
    about = "The Sotto relay: sign-in, directory, device keys and store-and-forward delivery of end-to-end encrypted messages."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "SOTTO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, env = "SOTTO_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The database: a SQLite file, created and migrated on start (default sotto.db), or a
    /// PostgreSQL URL (`postgres://user@host/db`), for several nodes sharing one database.
    #[arg(long, env = "SOTTO_DATABASE")]
    pub database: Option<String>,
    /// NATS URL (`nats://host:4222`) of the bus that nodes sharing one database use to
    /// wake each other's sockets. Default: none (one node).
    #[arg(long, env = "SOTTO_BUS")]
    pub bus: Option<String>,
    /// Address of the Prometheus `/metrics` listener (default 127.0.0.1:9464; "off": none).
    #[arg(long, env = "SOTTO_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Log lines as JSON objects (`json`) instead of text (`text`, the default).
    #[arg(long, env = "SOTTO_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Directory whose `www/` (at /), `pkg/` (at /pkg) and `examples/` (at /examples) to serve.
    #[arg(long, env = "SOTTO_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Web origin allowed to call the API from a browser (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "SOTTO_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Demo mode: seeds the org "demo" (alice, bob, carol, @support) and serves /demo/jwt,
    /// which mints sign-in tokens for anyone. Never use it in production.
    #[arg(long, env = "SOTTO_DEMO")]
    pub demo: bool,
    /// Demo mode on several nodes: the secret /demo/jwt signs with, shared by all of them
    /// (at least 32 characters; environment only). Default: a new random one per start.
    #[arg(skip = std::env::var("SOTTO_DEMO_SECRET").ok())]
    pub demo_secret: Option<String>,
    /// Without a command, the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage orgs, users, groups, sign-in keys, visitor tokens, webhooks and API keys, on
    /// the configured database or (with --url) through a running server's admin API.
    Admin(crate::cli::AdminArgs),
    /// Copy everything the configured SQLite database holds into a new, empty PostgreSQL
    /// database, to run several nodes on it. Stop the server first.
    CopyDatabase {
        /// The target: a `postgres://` URL of a database this server may create its
        /// tables in (better given as SOTTO_COPY_TO, out of the shell's history).
        #[arg(long, env = "SOTTO_COPY_TO", hide_env_values = true)]
        to: String,
    },
}

/// The configuration file's shape.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    /// The Prometheus `/metrics` listener: an address, or "off".
    pub metrics_listen: Option<String>,
    /// A SQLite file path or a `postgres://` URL.
    pub database: Option<String>,
    /// NATS URL of the bus between nodes.
    pub bus: Option<String>,
    /// With a bus: how often each node looks for queued envelopes of the devices connected
    /// to it, in case a wake-up was lost (default 2).
    pub bus_sweep_secs: Option<u64>,
    pub static_dir: Option<PathBuf>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Longest server session, in seconds (the JWT's `exp` may cut it shorter).
    pub session_max_secs: Option<i64>,
    /// Sign-in attempts allowed per client address per minute.
    pub auth_rate_per_minute: Option<u32>,
    /// Sends, bundle claims and uploads allowed per session per minute (each).
    pub session_rate_per_minute: Option<u32>,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or `addr/prefix`), for a
    /// server behind a TLS proxy or load balancer. Without it, the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Attachment bytes one org may store, in MiB (default 10,240).
    pub org_blob_quota_mib: Option<i64>,
    /// Lets webhooks post to http:// and to private or loopback addresses (a backend on
    /// the same network). Default false: https to public hosts only.
    #[serde(default)]
    pub allow_private_webhook_urls: bool,
    /// How long a message waits untaken by every device of its recipient before
    /// `message.queued_for_offline_user` is sent (default 30).
    pub webhook_offline_after_secs: Option<u64>,
    /// Where attachments' bytes go: a directory (default: beside a SQLite database,
    /// `<database>.blobs`; `sotto.blobs` in the working directory with PostgreSQL), or an
    /// S3-compatible bucket, `s3://bucket/prefix` (credentials and endpoint from `AWS_*`).
    pub blob_store: Option<String>,
    /// Delivery sockets one client address may hold (default 500).
    pub max_connections_per_address: Option<usize>,
    /// Clean-up (see `retention.rs`): how often, and how long things are kept.
    pub retention_interval_secs: Option<u64>,
    pub envelope_max_age_days: Option<i64>,
    pub blob_max_age_days: Option<i64>,
    pub visitor_max_idle_days: Option<i64>,
    /// How long the admin audit log keeps an entry (default 365).
    pub audit_max_age_days: Option<i64>,
    #[serde(default)]
    pub orgs: Vec<OrgConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    pub id: String,
    pub name: Option<String>,
    /// Tokens that let anonymous visitors sign in as temporary users.
    #[serde(default)]
    pub ephemeral_tokens: Vec<String>,
    /// Required `aud` of sign-in JWTs (any of these), when set.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Required `iss` of sign-in JWTs, when set.
    pub issuer: Option<String>,
    /// Clock leeway for `exp`/`nbf`/`iat`, in seconds (at most 60; default 30).
    pub leeway_secs: Option<u64>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// A JWKS URL where the site's identity provider publishes more sign-in keys (https;
    /// http only to this machine), fetched and cached (see `auth/jwks.rs`).
    pub jwks_url: Option<String>,
    /// Named groups: `[[orgs.groups]] name = "support", members = ["bob", "carol"]`.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// The tags anonymous visitors may write to (say `["support"]`). A visitor resolves
    /// only these, the members of these groups and its own tag, sees names but never
    /// emails, and is not told whether any other tag exists. Default: none.
    #[serde(default)]
    pub visitor_tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Chooses this key when a token's header names it.
    pub kid: Option<String>,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`: the only algorithm this key accepts.
    pub alg: String,
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// Name of an environment variable holding the HS256 secret.
    pub secret_env: Option<String>,
    /// Public key in PEM (RS256, ES256, EdDSA).
    pub public_key_pem: Option<String>,
    /// File holding the PEM public key.
    pub public_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// The Prometheus exporters' customary port range starts here.
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics` is served, apart from the public listener; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    pub database: crate::db::Location,
    /// The bus between nodes (NATS), when several share the database.
    pub bus: Option<String>,
    /// How often a node on the bus sweeps its connected devices' queues.
    pub bus_sweep: std::time::Duration,
    pub static_dir: Option<PathBuf>,
    pub allowed_origins: Vec<String>,
    pub session_max_secs: i64,
    pub auth_rate_per_minute: u32,
    pub session_rate_per_minute: u32,
    pub trusted_proxies: Vec<crate::auth::rate_limit::Cidr>,
    pub retention: crate::retention::Retention,
    pub org_blob_quota_mib: i64,
    /// Webhooks may post to http:// and private addresses.
    pub allow_private_webhook_urls: bool,
    pub webhook_offline_after: std::time::Duration,
    /// Where attachments' bytes are kept (the database keeps who uploaded what).
    pub blob_store: crate::blob_store::StoreLocation,
    pub max_connections_per_address: usize,
    pub orgs: Vec<OrgConfig>,
    pub demo: bool,
    /// The demo's shared signing secret, if one was given.
    pub demo_secret: Option<String>,
    /// Set for `sotto-server admin` on the database: start-up's own writes (the demo's
    /// users, the file's orgs and groups) are left to the server.
    pub admin_cli: bool,
}

impl Config {
    /// Merges file, environment and flags (clap has already folded the environment in).
    pub fn load(cli: Cli) -> Result<Config, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("invalid configuration {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut allowed_origins = file.allowed_origins;
        allowed_origins.extend(cli.allowed_origins);
        let database = cli
            .database
            .or(file.database)
            .unwrap_or_else(|| "sotto.db".into());
        // A libpq keyword string would otherwise become a SQLite file of that name.
        if ["host=", "dbname=", "user=", "password="]
            .iter()
            .any(|k| database.contains(k))
            && !database.contains("://")
        {
            return Err(
                "database: give PostgreSQL as a URL, postgres://user:password@host:5432/dbname \
                 (keyword=value settings are not read)"
                    .into(),
            );
        }
        let database = crate::db::Location::parse(&database);
        let metrics_listen =
            match cli.metrics_listen.or(file.metrics_listen).as_deref() {
                None => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
                Some("off") => None,
                Some(addr) => Some(addr.parse().map_err(|_| {
                    format!("metrics_listen: {addr:?} is not an address (or \"off\")")
                })?),
            };
        let config = Config {
            metrics_listen,
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".parse().unwrap()),
            blob_store: match file.blob_store {
                Some(setting) => crate::blob_store::StoreLocation::parse(&setting),
                None => crate::blob_store::StoreLocation::Directory(match &database {
                    crate::db::Location::Sqlite(path) => {
                        let mut dir = path.clone().into_os_string();
                        dir.push(".blobs");
                        PathBuf::from(dir)
                    }
                    crate::db::Location::Postgres(_) => PathBuf::from("sotto.blobs"),
                }),
            },
            database,
            bus: cli.bus.or(file.bus),
            bus_sweep: std::time::Duration::from_secs(
                file.bus_sweep_secs
                    .unwrap_or(crate::delivery::bus::SWEEP_EVERY.as_secs())
                    .max(1),
            ),
            static_dir: cli.static_dir.or(file.static_dir),
            allowed_origins,
            session_max_secs: file.session_max_secs.unwrap_or(12 * 3600),
            auth_rate_per_minute: file.auth_rate_per_minute.unwrap_or(120),
            session_rate_per_minute: file.session_rate_per_minute.unwrap_or(600),
            trusted_proxies: file
                .trusted_proxies
                .iter()
                .map(|p| p.parse().map_err(|e| format!("trusted_proxies: {e}")))
                .collect::<Result<_, String>>()?,
            retention: {
                let d = crate::retention::Retention::default();
                crate::retention::Retention {
                    interval_secs: file.retention_interval_secs.unwrap_or(d.interval_secs),
                    envelope_max_age_days: file
                        .envelope_max_age_days
                        .unwrap_or(d.envelope_max_age_days),
                    blob_max_age_days: file.blob_max_age_days.unwrap_or(d.blob_max_age_days),
                    visitor_max_idle_days: file
                        .visitor_max_idle_days
                        .unwrap_or(d.visitor_max_idle_days),
                    audit_max_age_days: file.audit_max_age_days.unwrap_or(d.audit_max_age_days),
                }
            },
            org_blob_quota_mib: file.org_blob_quota_mib.unwrap_or(10 * 1024).max(0),
            allow_private_webhook_urls: file.allow_private_webhook_urls,
            webhook_offline_after: file
                .webhook_offline_after_secs
                .map(|s| std::time::Duration::from_secs(s.clamp(1, 86_400)))
                .unwrap_or(crate::webhooks::OFFLINE_AFTER),
            max_connections_per_address: file
                .max_connections_per_address
                .unwrap_or(crate::delivery::registry::MAX_CONNECTIONS_PER_ADDRESS)
                .max(1),
            orgs: file.orgs,
            demo: cli.demo,
            demo_secret: cli.demo_secret,
            admin_cli: false,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for org in &self.orgs {
            if !seen.insert(org.id.as_str()) {
                return Err(format!("org {:?} is configured twice", org.id));
            }
            if let Some(url) = &org.jwks_url {
                crate::outbound::check_url(url, true)
                    .map_err(|e| format!("org {:?}: jwks_url: {e}", org.id))?;
            }
            if org.leeway_secs.is_some_and(|l| l > 60) {
                return Err(format!("org {:?}: leeway_secs may be at most 60", org.id));
            }
        }
        if self.session_max_secs <= 0 {
            return Err("session_max_secs must be positive".into());
        }
        let r = &self.retention;
        for (name, days) in [
            ("envelope_max_age_days", r.envelope_max_age_days),
            ("blob_max_age_days", r.blob_max_age_days),
            ("visitor_max_idle_days", r.visitor_max_idle_days),
            ("audit_max_age_days", r.audit_max_age_days),
        ] {
            if !(1..=36_500).contains(&days) {
                return Err(format!("{name} must be between 1 and 36500"));
            }
        }
        if !(1..=7 * 86_400).contains(&r.interval_secs) {
            return Err("retention_interval_secs must be between 1 and 604800".into());
        }
        Ok(())
    }
}

/// A URL without the user and password in it, for logs and messages.
pub fn without_credentials(url: &str) -> String {
    // The query string may carry credentials too (`?password=`): it is left out whole.
    let url = url.split('?').next().unwrap_or(url);
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A damaged configuration file is a clear error at start, never a panic.
        #[test]
        fn arbitrary_configuration_text_never_panics(text in proptest::prelude::any::<String>()) {
            let _ = toml::from_str::<FileConfig>(&text);
        }
    }

    /// A libpq keyword string is refused, not taken as a SQLite file name (which would hold
    /// the password in its name and give each node a database of its own); credentials in
    /// a URL, its query string included, never reach a message.
    #[test]
    fn a_keyword_database_setting_is_refused_and_urls_hide_credentials() {
        let cli = Cli::try_parse_from([
            "sotto-server",
            "--database",
            "host=db user=sotto password=hunter2 dbname=sotto",
        ])
        .unwrap();
        let err = Config::load(cli).unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let cli =
            Cli::try_parse_from(["sotto-server", "--database", "postgres://db/sotto"]).unwrap();
        assert!(matches!(
            Config::load(cli).unwrap().database,
            crate::db::Location::Postgres(_)
        ));
        for url in [
            "postgres://sotto:hunter2@db:5432/sotto",
            "postgres://db/sotto?user=sotto&password=hunter2",
            "nats://sotto:hunter2@nats:4222",
        ] {
            assert!(!without_credentials(url).contains("hunter2"), "{url}");
        }
    }

    #[test]
    fn the_example_configuration_parses() {
        let file: FileConfig = toml::from_str(include_str!("../sotto.example.toml")).unwrap();
        assert_eq!(file.orgs[0].keys.len(), 2);
        assert_eq!(file.orgs[0].groups[0].members, ["bob", "carol"]);
    }

    #[test]
    fn flags_override_the_file_and_bad_values_are_refused() {
        let dir = std::env::temp_dir().join(format!("sotto-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[[orgs]]\nid = \"a\"\nleeway_secs = 61\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..Default::default()
        };
        assert!(Config::load(cli).unwrap_err().contains("leeway_secs"));
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nunknown = 1\n").unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert!(Config::load(cli).unwrap_err().contains("unknown"));
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n").unwrap();
        let cli = Cli {
            config: Some(path),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(Config::load(cli).unwrap().listen.port(), 2);
    }
}
