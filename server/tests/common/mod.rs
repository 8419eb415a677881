//! Shared by the server's integration tests: a real server on a loopback port with its own
//! database (a fresh SQLite file; or, when `SOTTO_TEST_POSTGRES` names a PostgreSQL server,
//! a fresh database there, so the whole suite runs against either backend), an org with one key of each algorithm, and helpers to mint tokens and call
//! the API over real HTTP and WebSocket.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sotto_core::identity::{DeviceList, Identity};
use sotto_core::prekeys::{sign_prekey, PreKeySecret};
use sotto_server::config::{Config, GroupConfig, KeyConfig, OrgConfig};
use sotto_server::db::OwnedValue;
pub use sotto_server::db::{Conn, Location, ToValue};
pub use sotto_server::params;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

pub const HS_SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
pub const AUD: &str = "sotto-test";
pub const ISS: &str = "https://site.test";
pub const EPHEMERAL: &str = "visitor-token-1";

pub fn key_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

fn key(kid: &str, alg: &str, file: Option<&str>) -> KeyConfig {
    KeyConfig {
        kid: Some(kid.into()),
        alg: alg.into(),
        secret: file.is_none().then(|| HS_SECRET.into()),
        secret_env: None,
        public_key_pem: None,
        public_key_file: file.map(key_path),
    }
}

/// [`config`] with clean-up every second (its first sweep runs at start), for tests that
/// set a scene and wait for the next sweep.
pub fn sweeping_every_second(db: &TestDb) -> Config {
    let mut cfg = config(db);
    cfg.retention = sotto_server::retention::Retention {
        interval_secs: 1,
        ..Default::default()
    };
    cfg
}

pub fn config(db: &TestDb) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: db.location.clone(),
        bus: None,
        bus_sweep: sotto_server::delivery::bus::SWEEP_EVERY,
        static_dir: None,
        allowed_origins: vec![],
        session_max_secs: 12 * 3600,
        auth_rate_per_minute: 10_000,
        session_rate_per_minute: 100_000,
        trusted_proxies: vec![],
        retention: Default::default(),
        org_blob_quota_mib: 10 * 1024,
        allow_private_webhook_urls: true,
        webhook_offline_after: std::time::Duration::from_secs(30),
        blob_store: sotto_server::blob_store::StoreLocation::Directory(db.blob_dir.clone()),
        max_connections_per_address: 500,
        demo: false,
        demo_secret: None,
        metrics_listen: None,
        admin_cli: false,
        orgs: vec![OrgConfig {
            id: "acme".into(),
            name: Some("Acme".into()),
            ephemeral_tokens: vec![EPHEMERAL.into()],
            audience: vec![AUD.into()],
            issuer: Some(ISS.into()),
            leeway_secs: Some(5),
            keys: vec![
                key("hs", "HS256", None),
                key("rs", "RS256", Some("rsa.pub")),
                key("es", "ES256", Some("ec.pub")),
                key("ed", "EdDSA", Some("ed.pub")),
            ],
            groups: vec![GroupConfig {
                name: "support".into(),
                members: vec!["bob".into(), "gary".into(), "sue".into()],
            }],
            visitor_tags: vec!["support".into()],
            jwks_url: None,
        }],
    }
}

/// A test user's identity secret and the devices its list names.
type TestIdentity = ([u8; 64], Vec<String>);

pub struct TestServer {
    pub base: String,
    pub db: Location,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub http: reqwest::Client,
    /// Each test user's identity secret and devices, so a second device joins the same list.
    identities: std::sync::Mutex<std::collections::HashMap<String, TestIdentity>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let db = config.database.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            sotto_server::serve(
                config,
                async {
                    let _ = rx.await;
                },
                move |addr| {
                    let _ = addr_tx.send(addr);
                },
            )
            .await
            .expect("server failed");
        });
        let addr = addr_rx.await.expect("server did not bind");
        TestServer {
            base: format!("http://{addr}"),
            db,
            shutdown: Some(tx),
            task: Some(task),
            http: reqwest::Client::new(),
            identities: Default::default(),
        }
    }

    /// Stops the server and waits until it has let go of everything.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Signs in with a JWT and returns (session token, user id).
    pub async fn sign_in(&self, jwt: &str) -> (String, String) {
        let (status, body) = self.post("/v1/auth/jwt", None, json!({ "jwt": jwt })).await;
        assert_eq!(status, 200, "sign-in failed: {body}");
        (
            body["token"].as_str().unwrap().into(),
            body["user"]["id"].as_str().unwrap().into(),
        )
    }

    /// Signs in `user` (by user.id claim) and registers a device with `public_key`.
    pub async fn user_with_device(&self, user: &str, public_key: [u8; 32]) -> Member {
        let (token, user_id) = self
            .sign_in(&hs256(json!({ "user": { "id": user } })))
            .await;
        let (status, dev) = self
            .post(
                "/v1/devices",
                Some(&token),
                json!({ "public_key": sotto_core::b64::encode(&public_key) }),
            )
            .await;
        assert_eq!(status, 200, "{dev}");
        let member = Member {
            token,
            user_id,
            device_id: dev["id"].as_str().unwrap().into(),
        };
        self.publish_device(&member).await;
        member
    }

    /// Adds the member's device to its user's signed device list (making the identity on
    /// first use) and uploads a signed prekey, as a real client does after registering.
    pub async fn publish_device(&self, m: &Member) {
        let (secret, devices) = {
            let mut ids = self.identities.lock().unwrap();
            let entry = ids
                .entry(m.user_id.clone())
                .or_insert_with(|| (*Identity::generate().unwrap().secret_bytes(), Vec::new()));
            if !entry.1.contains(&m.device_id) {
                entry.1.push(m.device_id.clone());
            }
            entry.clone()
        };
        let identity = Identity::from_secret_bytes(&secret);
        let (status, body) = self
            .put(
                "/v1/identity",
                &m.token,
                json!({
                    "identity": identity.public(),
                    "device_list": identity.sign_device_list(&DeviceList {
                        user_id: m.user_id.clone(),
                        version: now_millis(),
                        devices,
                    }),
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let spk = PreKeySecret::generate(1).unwrap();
        let (status, body) = self
            .post(
                &format!("/v1/devices/{}/prekeys", m.device_id),
                Some(&m.token),
                json!({
                    "signed_prekey": sign_prekey(&identity, &spk),
                    "one_time_prekeys": (2..32)
                        .map(|id| PreKeySecret::generate(id).unwrap().public())
                        .collect::<Vec<_>>(),
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub fn identity_of(&self, user_id: &str) -> Identity {
        Identity::from_secret_bytes(&self.identities.lock().unwrap()[user_id].0)
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub fn user_count(&self) -> i64 {
        count(&self.db, "SELECT COUNT(*) FROM users", params![])
    }

    pub fn queued(&self) -> i64 {
        count(&self.db, "SELECT COUNT(*) FROM envelopes", params![])
    }

    /// The queue's size once it is `n`, or after 10 s, whatever it is then: an
    /// acknowledgement is written by the next group commit, which a busy machine delays.
    pub async fn queued_reaches(&self, n: i64) -> i64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = self.queued();
            if now == n || std::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/v1/ws", self.base.replacen("http", "ws", 1))
    }
}

pub struct Member {
    pub token: String,
    pub user_id: String,
    pub device_id: String,
}

/// Unix milliseconds, strictly increasing between calls (device lists need newer versions).
pub fn now_millis() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let prev = LAST.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
    if prev >= now {
        LAST.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    } else {
        now
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Adds `exp`, `aud` and `iss` unless the claims set them (use null to leave one out).
pub fn standard(mut claims: Value) -> Value {
    let obj = claims.as_object_mut().unwrap();
    obj.entry("exp").or_insert(json!(now() + 600));
    obj.entry("aud").or_insert(json!(AUD));
    obj.entry("iss").or_insert(json!(ISS));
    obj.retain(|_, v| !v.is_null());
    claims
}

pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: Value) -> String {
    let header = Header {
        kid: Some(kid.into()),
        ..Header::new(alg)
    };
    encode(&header, &standard(claims), key).unwrap()
}

pub fn pem(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).unwrap()
}

pub fn hs256(claims: Value) -> String {
    sign(
        Algorithm::HS256,
        "hs",
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
        claims,
    )
}

pub fn rs256(claims: Value) -> String {
    sign(
        Algorithm::RS256,
        "rs",
        &EncodingKey::from_rsa_pem(&pem("rsa.key")).unwrap(),
        claims,
    )
}

pub fn es256(claims: Value) -> String {
    sign(
        Algorithm::ES256,
        "es",
        &EncodingKey::from_ec_pem(&pem("ec.key")).unwrap(),
        claims,
    )
}

pub fn eddsa(claims: Value) -> String {
    sign(
        Algorithm::EdDSA,
        "ed",
        &EncodingKey::from_ed_pem(&pem("ed.key")).unwrap(),
        claims,
    )
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the delivery socket offering `token` and `device` as its protocols, as the
/// browser client does (see the server's `delivery/socket.rs`).
pub async fn open_socket(
    server: &TestServer,
    token: &str,
    device: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("sotto, bearer.{token}, device.{device}")
            .parse()
            .unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// Opens the delivery socket for `m`; returns it after the `ready` frame.
pub async fn connect(server: &TestServer, m: &Member) -> Ws {
    let mut ws = open_socket(server, &m.token, &m.device_id).await.unwrap();
    let ready = next_frame(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    ws
}

/// The next JSON frame, or a panic after 5 s.
pub async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// The next frame of type `kind`, passing over others already on their way.
pub async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next_frame(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// True when no frame arrives within `ms`.
pub async fn silent_for(ws: &mut Ws, ms: u64) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(ms), ws.next())
        .await
        .is_err()
}

pub async fn ack(ws: &mut Ws, seq: i64) {
    ws.send(Message::Text(
        json!({"type": "ack", "seq": seq}).to_string().into(),
    ))
    .await
    .unwrap();
}

/// Tells the server this device could not open envelope `seq`.
pub async fn retry(ws: &mut Ws, seq: i64) {
    ws.send(Message::Text(
        json!({"type": "retry", "seq": seq}).to_string().into(),
    ))
    .await
    .unwrap();
}

/// The PostgreSQL server the suite runs against instead of SQLite, if any: a URL of a
/// database on it that the test user may connect to (`postgres://127.0.0.1/test`); each
/// test gets a database of its own there, dropped when it ends.
pub const POSTGRES_ENV: &str = "SOTTO_TEST_POSTGRES";

/// A test's own database, and a directory beside it for the blob store.
pub struct TestDb {
    pub location: Location,
    pub blob_dir: PathBuf,
    /// (the server's URL to connect to for dropping it, the database's name)
    postgres: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            let _ = on_a_thread(move || {
                Conn::connect(&Location::Postgres(admin))?
                    .execute_batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            });
        }
    }
}

/// Runs blocking database work off the async runtime (the PostgreSQL client has its own).
fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("database thread panicked"))
}

/// A fresh database for one test: a SQLite file in a temporary directory, or a new
/// database on the server [`POSTGRES_ENV`] names.
pub fn temp_db() -> (tempfile::TempDir, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let blob_dir = dir.path().join("sotto.blobs");
    let Ok(admin) = std::env::var(POSTGRES_ENV) else {
        let location = Location::Sqlite(dir.path().join("sotto.db"));
        return (
            dir,
            TestDb {
                location,
                blob_dir,
                postgres: None,
            },
        );
    };
    let name = sotto_server::db::new_id("sotto_test");
    let created = on_a_thread(|| {
        Conn::connect(&Location::Postgres(admin.clone()))?
            .execute_batch(&format!("CREATE DATABASE {name}"))
    });
    if let Err(e) = created {
        panic!(
            "PostgreSQL is needed for this run ({POSTGRES_ENV}={admin}) but cannot create a \
             database there: {e}. Start PostgreSQL (Debian: apt install postgresql; \
             pg_ctlcluster 15 main start) or unset {POSTGRES_ENV} to test on SQLite."
        );
    }
    // The same server and credentials, the new database.
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let base = base.split('?').next().unwrap_or(base).to_owned();
    let location = Location::Postgres(format!("{base}/{name}"));
    (
        dir,
        TestDb {
            location,
            blob_dir,
            postgres: Some((admin, name)),
        },
    )
}

/// A SQLite database in a temporary directory, whichever backend the suite runs on.
pub fn sqlite_db() -> (tempfile::TempDir, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb {
        location: Location::Sqlite(dir.path().join("sotto.db")),
        blob_dir: dir.path().join("sotto.blobs"),
        postgres: None,
    };
    (dir, db)
}

/// Runs one statement straight on the database, as an operator (or time) would.
pub fn exec(db: &Location, sql: &str, params: &[&dyn ToValue]) -> usize {
    let values: Vec<OwnedValue> = params.iter().map(|p| p.to_value().into()).collect();
    on_a_thread(|| {
        let refs: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
        Conn::connect(db)?.execute(sql, &refs)
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one integer a query returns, read straight from the database.
pub fn count(db: &Location, sql: &str, params: &[&dyn ToValue]) -> i64 {
    let values: Vec<OwnedValue> = params.iter().map(|p| p.to_value().into()).collect();
    on_a_thread(|| {
        let refs: Vec<&dyn ToValue> = values.iter().map(|v| v as &dyn ToValue).collect();
        Conn::connect(db)?.query_row(sql, &refs, |r| r.get(0))
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Sends `text` as one envelope to each of `to`'s devices, as `from`: (status, body).
pub async fn send(server: &TestServer, from: &Member, to: &[&Member], text: &str) -> (u16, Value) {
    let envelopes: Vec<_> = to
        .iter()
        .map(|m| json!({ "device_id": m.device_id, "payload": sotto_core::b64::encode(text.as_bytes()) }))
        .collect();
    server
        .post(
            "/v1/envelopes",
            Some(&from.token),
            json!({
                "sender_device": from.device_id,
                "recipients": to.iter().map(|m| m.user_id.clone()).collect::<Vec<_>>(),
                "envelopes": envelopes,
            }),
        )
        .await
}

/// The NATS server the cluster tests use as the nodes' bus (`nats://127.0.0.1:4222`).
pub const NATS_ENV: &str = "SOTTO_TEST_NATS";

/// The bus URL for a cluster test, or a panic that says what is missing.
pub fn nats_url() -> String {
    std::env::var(NATS_ENV).unwrap_or_else(|_| {
        panic!(
            "this test needs NATS: set {NATS_ENV}=nats://127.0.0.1:4222 (Debian: apt install \
             nats-server; nats-server -js). scripts/service-tests.sh sets it when one answers."
        )
    })
}

/// Waits, if need be, until the current one-minute window has 10 s left at least: budgets
/// counted across nodes start again each minute, and a test that crossed into the next
/// would see its budget refilled.
pub async fn well_inside_a_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 >= 50 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - now % 60)).await;
    }
}

/// [`config`] for a node of a cluster: the shared database, the bus, and clean-up of
/// the connected devices' queues every `sweep_secs`.
pub fn node_config(db: &TestDb, sweep_secs: u64) -> Config {
    let mut cfg = config(db);
    cfg.bus = Some(nats_url());
    cfg.bus_sweep = std::time::Duration::from_secs(sweep_secs);
    cfg
}

/// The S3-compatible server (moto's, in the tests) that the S3 tests keep blobs on.
pub const S3_ENV: &str = "SOTTO_TEST_S3";

/// A new, empty bucket on the S3 server [`S3_ENV`] names, as a `blob_store` URL; the
/// `AWS_*` settings the server reads are set for this process.
pub async fn s3_bucket() -> String {
    let endpoint = std::env::var(S3_ENV).unwrap_or_else(|_| {
        panic!(
            "this test needs an S3-compatible server: set {S3_ENV}=http://127.0.0.1:PORT \
             (pip install 'moto[server]'; moto_server -p PORT). scripts/service-tests.sh \
             starts one."
        )
    });
    static SETTINGS: std::sync::Once = std::sync::Once::new();
    SETTINGS.call_once(|| {
        // Set once, before any server reads them; the same for every test.
        for (key, value) in [
            ("AWS_ENDPOINT", endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "sotto-test"),
            ("AWS_SECRET_ACCESS_KEY", "sotto-test-secret"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ] {
            std::env::set_var(key, value);
        }
    });
    let bucket = sotto_server::db::new_id("sotto-test").replace('_', "-");
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(
        resp.status().is_success(),
        "bucket not made: {}",
        resp.status()
    );
    format!("s3://{bucket}/attachments")
}

/// Uploads `bytes` as an attachment through `/v1/blobs`; its blob ID.
pub async fn upload(server: &TestServer, token: &str, bytes: Vec<u8>) -> String {
    let resp = server
        .http
        .post(format!("{}/v1/blobs", server.base))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Downloads attachment `id`: (status, bytes).
pub async fn download(server: &TestServer, token: &str, id: &str) -> (u16, Vec<u8>) {
    let resp = server
        .http
        .get(format!("{}/v1/blobs/{id}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

impl TestServer {
    /// Any request, for the admin API's PATCH and DELETE too: (status, JSON body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// The `database` setting that names this database, as an operator would give it.
pub fn database_setting(db: &Location) -> String {
    match db {
        Location::Sqlite(path) => path.display().to_string(),
        Location::Postgres(url) => url.clone(),
    }
}

/// Runs the real `sotto-server --database <db> <args…>`: (exit code, stdout, stderr).
pub fn server_command(db: &Location, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-server"))
        .arg("--database")
        .arg(database_setting(db))
        .args(args)
        .env_remove("SOTTO_ADMIN_URL")
        .env_remove("SOTTO_API_KEY")
        .env_remove("SOTTO_COPY_TO")
        .env("SOTTO_LOG", "warn")
        .output()
        .expect("sotto-server runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the real `sotto-server admin …` on `db`: (exit code, stdout, stderr).
pub fn admin_cli(db: &Location, args: &[&str]) -> (i32, String, String) {
    let args: Vec<&str> = std::iter::once("admin")
        .chain(args.iter().copied())
        .collect();
    server_command(db, &args)
}

/// A new API key made with the CLI, as an operator makes the first one.
pub fn api_key(db: &Location, org: Option<&str>, scope: &str) -> String {
    let mut args = vec!["--json", "api-keys", "create", "--scope", scope];
    if let Some(org) = org {
        args.extend(["--org", org]);
    }
    let (code, out, err) = admin_cli(db, &args);
    assert_eq!(code, 0, "{err}");
    let body: Value = serde_json::from_str(&out).unwrap();
    body["key"].as_str().unwrap().to_owned()
}
