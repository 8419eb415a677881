//! TLS to PostgreSQL: `sslmode` and `sslrootcert` mean what they mean to libpq, a server
//! that shows the wrong certificate is refused before anything is sent, and a node on a
//! verified connection works as on any other. The database sits behind a TLS-terminating
//! proxy in this test (the local PostgreSQL's own certificate is not one the test made),
//! which records whether each connection was encrypted. Needs PostgreSQL
//! (`SOTTO_TEST_POSTGRES`); `scripts/service-tests.sh` runs it.

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sotto_server::db::{Conn, Location};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A test CA, and the PEM file a URL's `sslrootcert` names.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem_file: tempfile::NamedTempFile,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Sotto test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pem_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pem_file.path(), cert.pem()).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem_file,
        }
    }

    fn path(&self) -> &str {
        self.pem_file.path().to_str().unwrap()
    }

    /// A server certificate for `host`, signed by this CA.
    fn server_config(&self, host: &str) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![host.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let der: CertificateDer<'static> = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap(),
        )
    }
}

/// How each connection through the proxy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Tls,
    Plain,
}

/// What the proxy answers to SSLRequest.
#[derive(Clone)]
enum Offer {
    /// TLS with this certificate.
    Tls(Arc<rustls::ServerConfig>),
    /// "No TLS here" (`N`).
    NoTls,
    /// Yes, then no handshake: a TLS stack that cannot read the client's hello.
    Broken,
}

/// A TLS-terminating proxy in front of the test's PostgreSQL, as a managed database's
/// endpoint would be: it answers SSLRequest as `offer` says, and passes the decrypted
/// stream on.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    async fn start(offer: Offer) -> Proxy {
        let upstream = postgres_host_port();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, offer, log) = (upstream.clone(), offer.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, offer, &log).await;
                });
            }
        });
        Proxy { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: &str,
    offer: Offer,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 8];
    client.read_exact(&mut head).await?;
    let mut server = TcpStream::connect(upstream).await?;
    if head != SSL_REQUEST {
        log.lock().unwrap().push(Seen::Plain);
        server.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        return Ok(());
    }
    match offer {
        Offer::Tls(config) => {
            client.write_all(b"S").await?;
            let mut client = tokio_rustls::TlsAcceptor::from(config)
                .accept(client)
                .await?;
            log.lock().unwrap().push(Seen::Tls);
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        Offer::Broken => {
            client.write_all(b"S").await?;
            client.write_all(b"not a TLS record").await?;
        }
        Offer::NoTls => {
            client.write_all(b"N").await?;
            // A client that requires TLS hangs up here; one that goes on starts in the clear.
            let mut first = [0u8; 1];
            if client.read(&mut first).await? == 0 {
                return Ok(());
            }
            log.lock().unwrap().push(Seen::Plain);
            server.write_all(&first).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
    }
    Ok(())
}

/// `host:port` of the PostgreSQL server the suite runs on.
fn postgres_host_port() -> String {
    let url =
        std::env::var(POSTGRES_ENV).expect("this test needs PostgreSQL: set SOTTO_TEST_POSTGRES");
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap();
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// The test database's URL, reached through `proxy` as `host`, with `query` added.
fn through(db: &TestDb, proxy: &Proxy, host: &str, query: &str) -> Location {
    let Location::Postgres(url) = &db.location else {
        panic!("a PostgreSQL test database")
    };
    let rest = url.split_once("://").unwrap().1;
    let (user, rest) = rest.rsplit_once('@').unwrap_or(("", rest));
    let name = rest.split_once('/').unwrap().1.split('?').next().unwrap();
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    Location::Postgres(format!(
        "postgres://{user}{host}:{}/{name}?{query}",
        proxy.port
    ))
}

/// Connects as a tool does, on the blocking pool (the client blocks; the proxy runs on this
/// runtime), and asks one thing: the error's text if it fails.
async fn try_connect(location: Location) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let conn = Conn::connect(&location).map_err(|e| e.to_string())?;
        let one: i64 = conn
            .query_row("SELECT 1", &[], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        assert_eq!(one, 1);
        Ok(())
    })
    .await
    .unwrap()
}

/// [`try_connect`] that must be refused: the reason.
async fn refused(location: Location) -> String {
    try_connect(location)
        .await
        .expect_err("the connection is refused")
}

fn needs_postgres() {
    assert!(
        std::env::var(POSTGRES_ENV).is_ok(),
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: SOTTO_TEST_POSTGRES (scripts/service-tests.sh sets it)"]
async fn a_node_on_a_verified_tls_connection_delivers_and_sends_nothing_in_the_clear() {
    needs_postgres();
    let (_dir, db) = temp_db();
    let ca = Ca::new();
    let proxy = Proxy::start(Offer::Tls(ca.server_config("localhost"))).await;
    let mut cfg = config(&db);
    cfg.database = through(
        &db,
        &proxy,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.path()),
    );
    let server = TestServer::start(cfg).await;
    let alice = server.user_with_device("alice", [1; 32]).await;
    let bob = server.user_with_device("bob", [2; 32]).await;
    let (status, receipt) = send(&server, &alice, &[&bob], "over TLS").await;
    assert_eq!(status, 200, "{receipt}");
    let mut bob_ws = connect(&server, &bob).await;
    let envelope = next_of_type(&mut bob_ws, "envelope").await;
    assert_eq!(envelope["seq"], receipt["seqs"][0]);
    server.stop().await;

    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the node connected through the proxy");
    assert!(
        seen.iter().all(|s| *s == Seen::Tls),
        "every connection of the node was encrypted: {seen:?}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: SOTTO_TEST_POSTGRES (scripts/service-tests.sh sets it)"]
async fn a_certificate_that_does_not_check_out_is_refused_before_anything_is_sent() {
    needs_postgres();
    let (_dir, db) = temp_db();
    let ca = Ca::new();
    let root = format!("sslrootcert={}", ca.path());
    // The database shows a certificate from the right CA, but for another host.
    let proxy = Proxy::start(Offer::Tls(ca.server_config("db.example.com"))).await;

    let e = refused(through(
        &db,
        &proxy,
        "localhost",
        &format!("sslmode=verify-full&{root}"),
    ))
    .await;
    assert!(e.contains("certificate"), "says why: {e}");
    // Not from a CA it trusts: the system's store, without sslrootcert.
    let e = refused(through(&db, &proxy, "localhost", "sslmode=verify-full")).await;
    assert!(e.contains("certificate"), "says why: {e}");
    // verify-ca against the system's store would take any public certificate: refused.
    let e = refused(through(&db, &proxy, "localhost", "sslmode=verify-ca")).await;
    assert!(
        e.contains("any publicly trusted certificate"),
        "says why: {e}"
    );
    // A CA that is not the one that signed it.
    let other = Ca::new();
    let e = refused(through(
        &db,
        &proxy,
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={}", other.path()),
    ))
    .await;
    assert!(e.contains("certificate"), "says why: {e}");
    assert!(
        proxy.seen().is_empty(),
        "no handshake finished, so nothing was sent: {:?}",
        proxy.seen()
    );

    // verify-ca checks the chain but not the name; so does require with a CA (as libpq).
    try_connect(through(
        &db,
        &proxy,
        "localhost",
        &format!("sslmode=verify-ca&{root}"),
    ))
    .await
    .unwrap();
    try_connect(through(
        &db,
        &proxy,
        "localhost",
        &format!("sslmode=require&{root}"),
    ))
    .await
    .unwrap();
    assert_eq!(proxy.seen(), vec![Seen::Tls, Seen::Tls]);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: SOTTO_TEST_POSTGRES (scripts/service-tests.sh sets it)"]
async fn each_sslmode_encrypts_as_libpq_would() {
    needs_postgres();
    let (_dir, db) = temp_db();
    let ca = Ca::new();
    let tls = Proxy::start(Offer::Tls(ca.server_config("db.example.com"))).await;
    // require and prefer (the default) take any certificate, as libpq: encrypted, unchecked.
    try_connect(through(&db, &tls, "localhost", "sslmode=require"))
        .await
        .unwrap();
    try_connect(through(&db, &tls, "localhost", "sslmode=prefer"))
        .await
        .unwrap();
    try_connect(through(&db, &tls, "localhost", "connect_timeout=5"))
        .await
        .unwrap();
    try_connect(through(&db, &tls, "localhost", "sslmode=disable"))
        .await
        .unwrap();
    assert_eq!(
        tls.seen(),
        vec![Seen::Tls, Seen::Tls, Seen::Tls, Seen::Plain]
    );

    // A database that offers no TLS: require refuses it, prefer goes on in the clear.
    let plain = Proxy::start(Offer::NoTls).await;
    let e = refused(through(&db, &plain, "localhost", "sslmode=require")).await;
    assert!(e.contains("TLS"), "says why: {e}");
    let e = refused(through(&db, &plain, "localhost", "sslmode=verify-full")).await;
    assert!(e.contains("TLS"), "says why: {e}");
    try_connect(through(&db, &plain, "localhost", "sslmode=prefer"))
        .await
        .unwrap();
    assert_eq!(plain.seen(), vec![Seen::Plain]);

    // A handshake that fails: prefer goes on without TLS (as libpq), require does not.
    let broken = Proxy::start(Offer::Broken).await;
    let e = refused(through(&db, &broken, "localhost", "sslmode=require")).await;
    assert!(e.contains("TLS"), "says why: {e}");
    assert!(broken.seen().is_empty());
    try_connect(through(&db, &broken, "localhost", "sslmode=prefer"))
        .await
        .unwrap();
    assert_eq!(broken.seen(), vec![Seen::Plain]);

    // A mistyped mode is an error, not a weaker connection.
    let e = refused(through(&db, &tls, "localhost", "sslmode=verify")).await;
    assert!(e.contains("sslmode=verify is not one of"), "{e}");
}
