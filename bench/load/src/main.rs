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
//! Usage: `sotto-load --server PATH [--levels 1000,5000,10000] [--seconds 10]
//! [--senders 64] [--json FILE]`

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sotto_core::identity::DeviceList;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;
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
            _ => panic!("unknown flag {flag}"),
        }
    }
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
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_server(bin: &PathBuf) -> Server {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).unwrap();
    let dir = std::env::temp_dir().join(format!("sotto-load-{}", u64::from_le_bytes(rnd)));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
database = "{}"
auth_rate_per_minute = 100000000
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
            dir.join("sotto.db").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
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
    Server {
        child,
        base,
        _dir: TempDir(dir),
    }
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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (field("VmRSS:"), field("VmHWM:"), ticks / hz)
}

struct Device {
    user_id: String,
    device_id: String,
    token: String,
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
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
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
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(t) = msg else { continue };
            let frame: Value = match serde_json::from_str(&t) {
                Ok(f) => f,
                Err(_) => continue,
            };
            if frame["type"] != "envelope" {
                continue;
            }
            let payload = sotto_core::b64::decode(frame["payload"].as_str().unwrap_or(""))
                .unwrap_or_default();
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
            let ack = json!({ "type": "ack", "seq": frame["seq"] }).to_string();
            if ws.send(Message::text(ack)).await.is_err() {
                break;
            }
        }
        counters.connected.fetch_sub(1, Ordering::SeqCst);
    });
    Device {
        user_id,
        device_id,
        token,
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
    let server = start_server(&args.server).await;
    let pid = server.child.id().unwrap();
    println!(
        "sotto-load: server {} (pid {pid}), open-file limit {limit}",
        server.base
    );
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
            let (base, http, counters, gate) = (
                server.base.clone(),
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
            let (devs, http, base, sent, failed) = (
                devs.clone(),
                http.clone(),
                server.base.clone(),
                sent.clone(),
                failed.clone(),
            );
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
                    match http.post(format!("{base}/v1/envelopes")).bearer_auth(&from.token).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            sent.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            eprintln!("send refused: {} {}", r.status(), r.text().await.unwrap_or_default());
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
        if delivered != sent || held != level {
            lost_any = true;
            eprintln!(
                "\n!!! LOST: at {level} devices, {sent} messages were sent but {delivered} delivered, and {held} of {level} connections held !!!\n"
            );
        }
        results.push(result);
    }
    let report = json!({ "levels": results, "lost": lost_any, "open_file_limit": limit });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
    drop(server);
    std::process::exit(if lost_any { 1 } else { 0 });
}
