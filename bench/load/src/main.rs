//! `sotto-load`: connects 1,000, then 5,000, then 10,000 devices (by default) to one
//! `sotto-server` that it starts itself, and has them send messages to each other.
//!
//! Every device signs in with its own JWT (real HS256 sign-in), registers, publishes a
//! signed device list (real Ed25519), and holds a real WebSocket that acknowledges what it
//! receives. At each level, senders post 1 KiB envelopes to random devices for a fixed time;
//! each envelope carries its send time, so the receiving socket measures delivery latency.
//! It reports, per level: connections held, deliveries per second, p50/p99 latency, the
//! server's peak RSS and CPU time, and messages sent against delivered — any difference is
//! reported loudly and makes the exit status non-zero. It raises its open-file limit (the
//! server it starts inherits it) and stops by itself.
//!
//! It runs one node on SQLite by default; `--postgres ADMIN_URL` puts the nodes on a fresh
//! PostgreSQL database (made with psql on that server, dropped afterwards), and `--nodes N
//! --bus NATS_URL` starts N nodes with the bus between them, the devices and their sends
//! spread over them. Beside each node's CPU time it reports PostgreSQL's (every `postgres`
//! process), NATS's (`nats-server`) and its own, per 1,000 deliveries.
//!
//! Sends go as the browser client sends them, as `send` frames on the sender's own delivery
//! socket (answered `stored`); `--via http` posts them to `POST /v1/envelopes` instead, the
//! client's fallback while its socket is down.
//!
//! Usage: `sotto-load --server PATH [--levels 1000,5000,10000] [--seconds 10]
//! [--senders 64] [--via socket|http] [--postgres URL] [--nodes N --bus URL] [--json FILE]`

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sotto_core::identity::DeviceList;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{oneshot, Semaphore};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "sotto-load-generator-secret-for-the-bench-org-only";
const PAYLOAD: usize = 1024;

struct Args {
    /// Instead of a load test: make this many users `member0…` with real keys (prekeys
    /// included) on the server at `base`, for the browser benchmark's 50-member thread.
    provision: usize,
    base: Option<String>,
    server: PathBuf,
    levels: Vec<usize>,
    seconds: u64,
    senders: usize,
    json: Option<PathBuf>,
    /// A PostgreSQL server (a URL of a database the user may create databases from).
    postgres: Option<String>,
    nodes: usize,
    bus: Option<String>,
    /// Sends as `send` frames on the socket (as the client does), or as HTTP posts.
    via_http: bool,
}

fn args() -> Args {
    let mut a = Args {
        provision: 0,
        base: None,
        server: PathBuf::from("target/server/sotto-server"),
        levels: vec![1000, 5000, 10000],
        seconds: 10,
        senders: 64,
        json: None,
        postgres: None,
        nodes: 1,
        bus: None,
        via_http: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => a.server = value.into(),
            "--levels" => {
                a.levels = value
                    .split(',')
                    .map(|v| v.parse().expect("a number"))
                    .collect()
            }
            "--seconds" => a.seconds = value.parse().expect("a number"),
            "--senders" => a.senders = value.parse().expect("a number"),
            "--json" => a.json = Some(value.into()),
            "--provision" => a.provision = value.parse().expect("a number"),
            "--base" => a.base = Some(value),
            "--postgres" => a.postgres = Some(value),
            "--nodes" => a.nodes = value.parse().expect("a number"),
            "--bus" => a.bus = Some(value),
            "--via" => {
                a.via_http = match value.as_str() {
                    "http" => true,
                    "socket" => false,
                    _ => panic!("--via takes socket or http"),
                }
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(
        a.nodes == 1 || (a.bus.is_some() && a.postgres.is_some()),
        "several nodes need --postgres and --bus"
    );
    a
}

/// Raises the soft open-file limit to the hard one: each device is a socket on both sides.
fn raise_open_files() -> u64 {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur
    }
}

struct Server {
    child: tokio::process::Child,
    base: String,
}

/// A fresh PostgreSQL database for one run, dropped afterwards.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin: &str) -> PgDatabase {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).unwrap();
        let name = format!("sotto_load_{:016x}", u64::from_le_bytes(rnd));
        psql(admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        PgDatabase {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let status = std::process::Command::new("psql")
        .args([url, "-qc", sql])
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql: {sql}");
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration file every node of a run shares, in `dir`.
fn write_config(dir: &std::path::Path, database: &str, bus: Option<&str>) -> PathBuf {
    let config = dir.join("bench.toml");
    let bus = bus.map(|b| format!("bus = \"{b}\"\n")).unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
database = "{database}"
blob_store = "{}"
{bus}auth_rate_per_minute = 100000000
session_rate_per_minute = 100000000
max_connections_per_address = 100000
session_max_secs = 86400

[[orgs]]
id = "bench"
[[orgs.keys]]
kid = "bench"
alg = "HS256"
secret = "{SECRET}"
"#,
            dir.join("blobs").display()
        ),
    )
    .unwrap();
    config
}

async fn start_server(bin: &PathBuf, config: &std::path::Path) -> Server {
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .env("SOTTO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server exited before listening");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, base }
}

/// CPU time (s) of process `pid`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU time (s) of every process named `comm` (PostgreSQL's server processes, NATS).
fn cpu_of_all(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

/// CPU seconds so far of each component: the nodes, PostgreSQL, NATS, this generator.
fn component_cpu(nodes: &[Server]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = nodes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("node{i}"),
                server_stats(s.child.id().unwrap_or(0)).2,
            )
        })
        .collect();
    out.push(("postgres".into(), cpu_of_all("postgres")));
    out.push(("nats".into(), cpu_of_all("nats-server")));
    out.push(("generator".into(), cpu_seconds("self")));
    out
}

/// The server's resident memory now and at its peak (KiB), and its CPU time (s).
fn server_stats(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:"),
        field("VmHWM:"),
        cpu_seconds(&pid.to_string()),
    )
}

struct Device {
    /// The node it signed in and connected to.
    base: String,
    user_id: String,
    device_id: String,
    token: String,
    /// Frames to write on its socket (sends and acks).
    outgoing: tokio::sync::mpsc::UnboundedSender<Message>,
    /// Sends made on its socket and not yet answered, by frame ID.
    answers: Arc<Mutex<HashMap<u64, oneshot::Sender<Result<(), String>>>>>,
    next_send: AtomicU64,
}

impl Device {
    /// Sends `body` (a send request) as a `send` frame and waits for the server's answer.
    async fn send_on_socket(&self, body: Value) -> Result<(), String> {
        let id = self.next_send.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.answers.lock().unwrap().insert(id, tx);
        let frame = json!({ "type": "send", "id": id, "request": body }).to_string();
        self.outgoing
            .send(Message::text(frame))
            .map_err(|_| "the socket is closed".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("the socket closed before the answer".into()))
    }
}

/// What the generator reads of a server frame, borrowed from its text (the fields it reads
/// carry no escapes): a whole `Value` would copy the 1.4 KB payload of every envelope.
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: Option<u64>,
    seq: Option<i64>,
    payload: Option<&'a str>,
    error: Option<Value>,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    connected: AtomicUsize,
    latencies_us: Mutex<Vec<u64>>,
}

fn jwt(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("bench".into());
    encode(
        &header,
        &json!({ "user": { "id": user, "name": user }, "iat": now, "exp": now + 7200 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Value {
    for attempt in 0..5 {
        let mut req = http.request(method.clone(), &url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                return resp.json().await.unwrap_or(Value::Null)
            }
            Ok(resp) => panic!(
                "{url}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            ),
            Err(e) if attempt < 4 => {
                eprintln!("{url}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
    unreachable!()
}

/// Signs a new device in, registers it, publishes its signed list and connects it.
async fn new_device(
    base: &str,
    http: &reqwest::Client,
    n: usize,
    start: Instant,
    counters: Arc<Counters>,
) -> Device {
    let (token, user_id, device_id) = publish_user(http, base, &format!("load{n}"), false).await;

    let ws_url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
    // The session and device travel as WebSocket protocols, as the browser client sends them.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("sotto, bearer.{token}, device.{device_id}")
            .parse()
            .unwrap(),
    );
    // Nagle off, as browsers have it: with it on, a send frame written just after an ack
    // waits for the server's delayed ACK (40 ms on Linux).
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("websocket");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => break,
            Some(Ok(_)) => continue,
            other => panic!("no ready frame: {other:?}"),
        }
    }
    counters.connected.fetch_add(1, Ordering::SeqCst);
    let (mut sink, mut stream) = ws.split();
    let (outgoing, mut to_write) = tokio::sync::mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(m) = to_write.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let answers: Arc<Mutex<HashMap<u64, oneshot::Sender<Result<(), String>>>>> = Default::default();
    let (acks, pending) = (outgoing.clone(), answers.clone());
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(t) = msg else { continue };
            let Ok(frame) = serde_json::from_str::<Frame>(&t) else {
                continue;
            };
            if frame.kind == "stored" || frame.kind == "refused" {
                let id = frame.id.unwrap_or(u64::MAX);
                if let Some(answer) = pending.lock().unwrap().remove(&id) {
                    let result = if frame.kind == "stored" {
                        Ok(())
                    } else {
                        Err(frame.error.map(|e| e.to_string()).unwrap_or_default())
                    };
                    let _ = answer.send(result);
                }
                continue;
            }
            if frame.kind != "envelope" {
                continue;
            }
            // The send time is in the payload's first 8 bytes: 12 base64 characters hold 9.
            let head = frame.payload.and_then(|p| p.get(..12)).unwrap_or("");
            let payload = sotto_core::b64::decode(head).unwrap_or_default();
            if payload.len() >= 8 {
                let sent = u64::from_be_bytes(payload[..8].try_into().unwrap());
                let now = start.elapsed().as_micros() as u64;
                counters
                    .latencies_us
                    .lock()
                    .unwrap()
                    .push(now.saturating_sub(sent));
            }
            counters.delivered.fetch_add(1, Ordering::SeqCst);
            let ack = format!(r#"{{"type":"ack","seq":{}}}"#, frame.seq.unwrap_or(0));
            if acks.send(Message::text(ack)).is_err() {
                break;
            }
        }
        counters.connected.fetch_sub(1, Ordering::SeqCst);
        // Sends still waiting will not be answered on this socket.
        pending.lock().unwrap().clear();
    });
    Device {
        base: base.to_owned(),
        user_id,
        device_id,
        token,
        outgoing,
        answers,
        next_send: AtomicU64::new(1),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn random_below(n: usize) -> usize {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    (u64::from_le_bytes(b) % n as u64) as usize
}

/// Signs `user` in, registers a device with real keys and publishes the signed device list
/// naming it — and, with `prekeys`, a signed prekey and 100 one-time prekeys, so browsers
/// can start sessions with it. Returns (session token, user ID, device ID).
async fn publish_user(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    prekeys: bool,
) -> (String, String, String) {
    let session = call(
        http,
        reqwest::Method::POST,
        format!("{base}/v1/auth/jwt"),
        None,
        json!({ "jwt": jwt(user) }),
    )
    .await;
    let token = session["token"].as_str().unwrap().to_string();
    let user_id = session["user"]["id"].as_str().unwrap().to_string();
    let mut account = sotto_core::account::Account::generate(&user_id, 0).unwrap();
    let dev = call(
        http,
        reqwest::Method::POST,
        format!("{base}/v1/devices"),
        Some(&token),
        json!({ "public_key": sotto_core::b64::encode(&account.device_public_key()) }),
    )
    .await;
    let device_id = dev["id"].as_str().unwrap().to_string();
    if prekeys {
        let one_time = account.generate_one_time_prekeys(100).unwrap();
        call(
            http,
            reqwest::Method::POST,
            format!("{base}/v1/devices/{device_id}/prekeys"),
            Some(&token),
            json!({ "signed_prekey": account.signed_prekey(), "one_time_prekeys": one_time }),
        )
        .await;
    }
    let list = account.sign_device_list(&DeviceList {
        user_id: user_id.clone(),
        version: 1,
        devices: vec![device_id.clone()],
    });
    call(
        http,
        reqwest::Method::PUT,
        format!("{base}/v1/identity"),
        Some(&token),
        json!({ "identity": account.identity_public(), "device_list": list }),
    )
    .await;
    (token, user_id, device_id)
}

/// Users with real accounts whose devices others can start sessions with, but that never
/// connect (what is sent to them waits in their queues).
async fn provision(base: &str, n: usize) {
    let http = reqwest::Client::new();
    for i in 0..n {
        publish_user(&http, base, &format!("member{i}"), true).await;
    }
    println!("sotto-load: {n} members provisioned");
}

#[tokio::main]
async fn main() {
    let args = args();
    if args.provision > 0 {
        provision(
            args.base.as_deref().expect("--provision needs --base"),
            args.provision,
        )
        .await;
        return;
    }
    let limit = raise_open_files();
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!("sotto-load-{}", u64::from_le_bytes(rnd))));
    std::fs::create_dir_all(&dir.0).unwrap();
    let pg = args.postgres.as_deref().map(PgDatabase::create);
    let database = match &pg {
        Some(pg) => pg.url.clone(),
        None => dir.0.join("sotto.db").display().to_string(),
    };
    let config = write_config(&dir.0, &database, args.bus.as_deref());
    let mut servers = Vec::new();
    for _ in 0..args.nodes {
        servers.push(start_server(&args.server, &config).await);
    }
    let configuration = format!(
        "{} node{} on {}{}, {} sends in flight over {}",
        args.nodes,
        if args.nodes == 1 { "" } else { "s" },
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        if args.bus.is_some() { " + NATS" } else { "" },
        args.senders,
        if args.via_http { "HTTP" } else { "the sockets" },
    );
    let pid = servers[0].child.id().unwrap();
    for s in &servers {
        println!(
            "sotto-load: {configuration}: node {} (pid {}), open-file limit {limit}",
            s.base,
            s.child.id().unwrap()
        );
    }
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let start = Instant::now();
    let counters = Arc::new(Counters::default());
    let mut devices: Vec<Arc<Device>> = Vec::new();
    let mut results = Vec::new();
    let mut lost_any = false;
    for &level in &args.levels {
        // Bring the fleet up to `level` devices, 256 at a time.
        let setup = Instant::now();
        let gate = Arc::new(Semaphore::new(256));
        let mut joins = Vec::new();
        for n in devices.len()..level {
            // Devices are spread over the nodes, each signed in and connected to its own.
            let (base, http, counters, gate) = (
                bases[n % bases.len()].clone(),
                http.clone(),
                counters.clone(),
                gate.clone(),
            );
            joins.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                new_device(&base, &http, n, start, counters).await
            }));
        }
        for j in joins {
            devices.push(Arc::new(j.await.expect("device setup")));
        }
        let setup_secs = setup.elapsed().as_secs_f64();
        let (_, _, cpu_before) = server_stats(pid);
        let components_before = component_cpu(&servers);

        // Send for `seconds`, `senders` posts in flight, to random devices.
        counters.latencies_us.lock().unwrap().clear();
        let delivered_before = counters.delivered.load(Ordering::SeqCst);
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(args.seconds);
        let phase = Instant::now();
        let devs = Arc::new(devices.clone());
        let mut senders = Vec::new();
        for _ in 0..args.senders {
            let (devs, http, sent, failed) =
                (devs.clone(), http.clone(), sent.clone(), failed.clone());
            let via_http = args.via_http;
            senders.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let from = &devs[random_below(devs.len())];
                    let to = loop {
                        let d = &devs[random_below(devs.len())];
                        if d.device_id != from.device_id {
                            break d;
                        }
                    };
                    let mut payload = vec![0u8; PAYLOAD];
                    payload[..8].copy_from_slice(&(start.elapsed().as_micros() as u64).to_be_bytes());
                    let body = json!({
                        "sender_device": from.device_id,
                        "recipients": [to.user_id],
                        "envelopes": [{ "device_id": to.device_id, "payload": sotto_core::b64::encode(&payload) }],
                    });
                    // Each sender sends through its own device's node.
                    let outcome = if via_http {
                        match http.post(format!("{}/v1/envelopes", from.base)).bearer_auth(&from.token).json(&body).send().await {
                            Ok(r) if r.status().is_success() => Ok(()),
                            Ok(r) => Err(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                            Err(e) => Err(e.to_string()),
                        }
                    } else {
                        from.send_on_socket(body).await
                    };
                    match outcome {
                        Ok(()) => {
                            sent.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            eprintln!("send failed: {e}");
                        }
                    }
                }
            }));
        }
        for s in senders {
            s.await.unwrap();
        }
        let send_secs = phase.elapsed().as_secs_f64();
        let sent = sent.load(Ordering::SeqCst);
        // Let the last deliveries land (at most 30 s).
        let drain = Instant::now();
        while counters.delivered.load(Ordering::SeqCst) - delivered_before < sent
            && drain.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let total_secs = phase.elapsed().as_secs_f64();
        let delivered = counters.delivered.load(Ordering::SeqCst) - delivered_before;
        let (rss, peak, cpu_after) = server_stats(pid);
        let cpu: serde_json::Map<String, Value> = component_cpu(&servers)
            .into_iter()
            .zip(&components_before)
            .map(|((name, after), (_, before))| (name, json!(after - before)))
            .collect();
        let per_thousand: serde_json::Map<String, Value> = cpu
            .iter()
            .map(|(name, secs)| {
                let ms = secs.as_f64().unwrap_or(0.0) * 1000.0 / (delivered.max(1) as f64 / 1000.0);
                (name.clone(), json!(ms))
            })
            .collect();
        let mut lat = std::mem::take(&mut *counters.latencies_us.lock().unwrap());
        lat.sort_unstable();
        let held = counters.connected.load(Ordering::SeqCst);
        let result = json!({
            "devices": level,
            "connections_held": held,
            "setup_seconds": setup_secs,
            "send_seconds": send_secs,
            "sent": sent,
            "send_errors": failed.load(Ordering::SeqCst),
            "delivered": delivered,
            "deliveries_per_second": delivered as f64 / total_secs,
            "latency_ms_p50": percentile(&lat, 0.50),
            "latency_ms_p99": percentile(&lat, 0.99),
            "server_rss_mib": rss as f64 / 1024.0,
            "server_peak_rss_mib": peak as f64 / 1024.0,
            "server_cpu_seconds": cpu_after - cpu_before,
            "cpu_seconds": cpu,
            "cpu_ms_per_1000_deliveries": per_thousand,
        });
        println!(
            "{level:>6} devices: {held} connections held, {sent} sent, {delivered} delivered, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, server peak RSS {:.0} MiB, CPU {:.1} s (setup {:.1} s)",
            result["deliveries_per_second"].as_f64().unwrap(),
            result["latency_ms_p50"].as_f64().unwrap(),
            result["latency_ms_p99"].as_f64().unwrap(),
            result["server_peak_rss_mib"].as_f64().unwrap(),
            result["server_cpu_seconds"].as_f64().unwrap(),
            setup_secs,
        );
        println!(
            "{:>6}   CPU ms per 1,000 deliveries: {}",
            "",
            per_thousand
                .iter()
                .map(|(k, v)| format!("{k} {:.0}", v.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if delivered != sent || held != level {
            lost_any = true;
            eprintln!(
                "\n!!! LOST: at {level} devices, {sent} messages were sent but {delivered} delivered, and {held} of {level} connections held !!!\n"
            );
        }
        results.push(result);
    }
    let report = json!({
        "configuration": configuration,
        "levels": results,
        "lost": lost_any,
        "open_file_limit": limit,
    });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
    drop(servers);
    drop(pg);
    drop(dir);
    std::process::exit(if lost_any { 1 } else { 0 });
}
