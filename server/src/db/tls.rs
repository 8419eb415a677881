//! TLS to PostgreSQL, with the meanings libpq gives `sslmode` and `sslrootcert`, so that a
//! URL that works with `psql` (a managed database's `?sslmode=verify-full&sslrootcert=…`)
//! means the same here. tokio-postgres itself knows only `disable`, `prefer` and `require`
//! and checks no certificate: what is checked is chosen here.
//!
//! | `sslmode`              | TLS                       | the certificate checked                 |
//! |------------------------|---------------------------|-----------------------------------------|
//! | `disable`              | never                     | —                                       |
//! | `allow`, `prefer` (default) | if the server offers it | nothing (as libpq): only against listeners |
//! | `require`              | always                    | nothing, or the chain if `sslrootcert`  |
//! | `verify-ca`            | always                    | chains to a trusted CA                  |
//! | `verify-full`          | always                    | chains to a trusted CA and names the host |
//!
//! `sslrootcert` is a PEM file of the CAs to trust; without it (or with `system`) the
//! system's CA store is used. Only `verify-full` stops someone on the network path from
//! posing as the database.

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// How much a connection requires of TLS (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS part of a database URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// `sslrootcert`: a PEM file of the CAs to trust, or `system`.
    pub root_cert: Option<String>,
}

impl Settings {
    /// What tokio-postgres is told: whether it must, may or must not start TLS.
    pub fn postgres_mode(&self) -> postgres::config::SslMode {
        match self.mode {
            Mode::Disable => postgres::config::SslMode::Disable,
            Mode::Prefer => postgres::config::SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => postgres::config::SslMode::Require,
        }
    }
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL: (the rest, which
/// tokio-postgres parses; the TLS settings). The query is found where tokio-postgres finds
/// it (after the credentials, which may hold a `?`), and keys are decoded as it decodes
/// them, so no spelling of `sslmode` slips past one parser to the other.
pub fn split(url: &str) -> Result<(String, Settings), String> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let at = url[after_scheme..].find('@');
    // tokio-postgres ends the credentials at the first '@' anywhere, libpq at the host's
    // '/': a URL they would read differently is refused rather than guessed at.
    if at.is_some_and(|at| {
        url[after_scheme..]
            .find('/')
            .is_some_and(|slash| slash < at)
    }) {
        return Err(
            "the database URL has an '@' after a '/': write '@' in a database name \
                    or parameter as %40, and '/' in a password as %2F"
                .into(),
        );
    }
    let host_from = at.map_or(after_scheme, |i| after_scheme + i + 1);
    let (base, query) = match url[host_from..].find('?') {
        Some(i) => (&url[..host_from + i], &url[host_from + i + 1..]),
        None => (url, ""),
    };
    let decode = |text: &str, what: &str| {
        percent_decode_str(text)
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| format!("the database URL's {what} is not UTF-8"))
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key, "query")?.as_str() {
            "sslmode" => {
                mode = Some(match decode(value, "sslmode")?.as_str() {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(format!(
                            "the database URL's sslmode={other} is not one of disable, allow, \
                             prefer, require, verify-ca or verify-full"
                        ));
                    }
                })
            }
            "sslrootcert" => root_cert = Some(decode(value, "sslrootcert")?),
            _ => kept.push(pair),
        }
    }
    let system = root_cert.is_none() || root_cert.as_deref() == Some("system");
    let mode = match (mode, root_cert.as_deref()) {
        // As libpq 16: the system's CAs mean verify-full, and nothing weaker, since any
        // publicly trusted certificate (anyone can get one for a domain of their own)
        // would pass a check of the chain alone.
        (None, Some("system")) => Mode::VerifyFull,
        (Some(Mode::Disable | Mode::Prefer | Mode::Require | Mode::VerifyCa), Some("system"))
        | (Some(Mode::VerifyCa), None) => {
            return Err(
                "the database URL trusts the system's CAs with less than sslmode=verify-full, \
                 which would take any publicly trusted certificate: name the database's CA \
                 with sslrootcert=<file>, or use sslmode=verify-full"
                    .into(),
            );
        }
        // As libpq: `require` with a CA file checks the chain, as `verify-ca` does.
        (Some(Mode::Require), Some(_)) => Mode::VerifyCa,
        (Some(mode), _) => mode,
        (None, _) => Mode::Prefer,
    };
    debug_assert!(!(mode == Mode::VerifyCa && system));
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, Settings { mode, root_cert }))
}

/// Whether a connection failed in its TLS handshake itself (rustls's error, which comes
/// wrapped as an I/O error), so that `prefer` may go on without TLS, as libpq does. Any
/// other TLS refusal (`sslnegotiation=direct` with `prefer`, say) stays an error.
pub fn is_handshake_failure(e: &postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
        && std::error::Error::source(e).is_some_and(|c| c.is::<std::io::Error>())
}

/// The connector for these settings. With `disable` it is never used.
pub fn connector(settings: &Settings) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match settings.mode {
        Mode::Disable | Mode::Prefer | Mode::Require => Arc::new(Unchecked(provider.clone())),
        Mode::VerifyCa | Mode::VerifyFull => {
            let roots = trusted(settings.root_cert.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(roots.into(), provider.clone())
                    .build()
                    .map_err(|e| format!("the database's TLS roots: {e}"))?;
            if settings.mode == Mode::VerifyCa {
                Arc::new(AnyHost(webpki))
            } else {
                webpki
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS to the database: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The CAs `sslrootcert` names, or the system's.
fn trusted(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("the database URL's sslrootcert={path}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert={path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert={path}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("sslrootcert={path} holds no certificate"));
            }
        }
        _ => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err("no CA certificates were found on this system to check the \
                            database's certificate against; name a file with sslrootcert="
                    .into());
            }
        }
    }
    Ok(roots)
}

/// `prefer` and `require` without a CA, as libpq: the session is encrypted against someone
/// who only listens, but any certificate is taken. The handshake's signatures are still
/// checked, so the session is with whoever holds the key of the certificate shown.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA, whatever host the certificate names.
/// (The chain is checked before the name, so only a name mismatch is forgiven.)
#[derive(Debug)]
struct AnyHost(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TLS keys leave the URL, everything else stays, and libpq's defaults hold.
    #[test]
    fn the_tls_settings_are_taken_out_of_the_url() {
        let (rest, tls) = split("postgres://u:p@db/site").unwrap();
        assert_eq!(rest, "postgres://u:p@db/site");
        assert_eq!(tls.mode, Mode::Prefer, "libpq's default");

        let (rest, tls) = split(
            "postgres://u@db/site?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u@db/site?connect_timeout=5&application_name=a"
        );
        assert_eq!(
            tls,
            Settings {
                mode: Mode::VerifyFull,
                root_cert: Some("/etc/ca x.pem".into())
            }
        );

        // Found where tokio-postgres finds it: after credentials that hold a `?`, and
        // under an encoded key.
        let (rest, tls) = split("postgres://u:pa?ss@db/s?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://u:pa?ss@db/s", Mode::Require)
        );
        let (rest, tls) = split("postgres://db/s?ssl%6Dode=verify-full").unwrap();
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://db/s", Mode::VerifyFull)
        );
        // The system's CAs mean verify-full.
        assert_eq!(
            split("postgres://db/s?sslrootcert=system").unwrap().1.mode,
            Mode::VerifyFull
        );

        let (_, tls) = split("postgres://db/s?sslrootcert=/ca.pem&sslmode=require").unwrap();
        assert_eq!(
            tls.mode,
            Mode::VerifyCa,
            "require with a CA checks the chain"
        );
        assert_eq!(
            split("postgres://db/s?sslmode=allow").unwrap().1.mode,
            Mode::Prefer
        );
        assert_eq!(
            split("postgres://db/s?sslmode=disable").unwrap().1.mode,
            Mode::Disable
        );
    }

    /// A mistyped mode or root file is a clear error, never a weaker connection.
    #[test]
    fn a_bad_tls_setting_is_refused_with_what_was_wrong() {
        let e = split("postgres://db/s?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode=verify is not one of"), "{e}");
        let e = split("postgres://db/s?sslmode=%FF").unwrap_err();
        assert!(e.contains("sslmode is not UTF-8"), "{e}");
        // An '@' the two URL parsers would read differently (here, tokio-postgres would
        // take "db/s?application_name=a" for the user and "b" for the host).
        for ambiguous in [
            "postgres://db/s?application_name=a@b",
            "postgres://u:p/w@db/s",
        ] {
            let e = split(ambiguous).unwrap_err();
            assert!(e.contains("an '@' after a '/'"), "{ambiguous}: {e}");
        }
        assert!(split("postgres://u:p%2Fw@db/s?application_name=a%40b").is_ok());
        // A check of the chain alone against the system's CAs proves nothing.
        for weak in [
            "sslmode=verify-ca",
            "sslmode=verify-ca&sslrootcert=system",
            "sslmode=prefer&sslrootcert=system",
            "sslmode=require&sslrootcert=system",
        ] {
            let e = split(&format!("postgres://db/s?{weak}")).unwrap_err();
            assert!(
                e.contains("any publicly trusted certificate"),
                "{weak}: {e}"
            );
        }

        let (_, tls) =
            split("postgres://db/s?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = connector(&tls).err().unwrap();
        assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");

        let empty = tempfile::NamedTempFile::new().unwrap();
        let path = empty.path().to_str().unwrap();
        let (_, tls) = split(&format!(
            "postgres://db/s?sslmode=verify-ca&sslrootcert={path}"
        ))
        .unwrap();
        let e = connector(&tls).err().unwrap();
        assert!(e.contains("holds no certificate"), "{e}");
    }
}
