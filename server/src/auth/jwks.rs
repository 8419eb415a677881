//! An org's sign-in keys published by its identity provider as a JWKS (`jwks_url`), so
//! the site rotates keys without touching Sotto.
//!
//! The set is fetched with a timeout and kept as long as its `Cache-Control: max-age`
//! says (within [`MIN_FRESH`]..[`MAX_FRESH`]; [`DEFAULT_FRESH`] without one). A token
//! naming a `kid` not in the set refetches it, at most once per [`REFETCH_AT_MOST`], so a
//! flood of made-up kids costs one request per interval. A key that leaves the set stays
//! accepted until the copy that held it would have gone stale: tokens signed just before
//! a rotation still sign in. If the provider cannot be reached, the last good set is
//! used until its keys run out.
//!
//! A URL set through the admin API must be https to a public address, checked again on
//! every address its name resolves to (`outbound.rs`); one in the configuration file may
//! name the operator's own network.
//!
//! Each published key accepts one algorithm: its `alg`, or the one its type implies (RSA:
//! RS256, EC P-256: ES256, OKP Ed25519: EdDSA); symmetric (`oct`) keys are never taken
//! from a URL.

use super::jwt::VerifyingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::time::{Duration, Instant};

pub const MIN_FRESH: Duration = Duration::from_secs(30);
pub const MAX_FRESH: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_FRESH: Duration = Duration::from_secs(3600);
pub const REFETCH_AT_MOST: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read.
const MAX_DOCUMENT: usize = 64 * 1024;
/// The most keys kept from one org's JWKS.
const MAX_KEYS: usize = 32;

struct Cached {
    key: VerifyingKey,
    /// Accepted until then (extended each time the provider still lists it).
    until: Instant,
}

#[derive(Default)]
struct State {
    keys: Vec<Cached>,
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
}

/// One org's JWKS.
pub struct Jwks {
    url: String,
    /// A URL from the operator's own file may name a private address; one set through
    /// the API may not (see `outbound.rs`).
    allow_private: bool,
    state: tokio::sync::Mutex<State>,
}

impl Jwks {
    pub fn new(url: String, allow_private: bool) -> Jwks {
        Jwks {
            url,
            allow_private,
            state: Default::default(),
        }
    }

    /// The keys to verify a token with, fetching the set first when it is stale or does
    /// not hold `kid`.
    pub async fn keys(&self, kid: Option<&str>) -> Vec<VerifyingKey> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let stale = state.fresh_until.is_none_or(|t| now >= t);
        let unknown =
            kid.is_some_and(|kid| !state.keys.iter().any(|c| c.key.kid.as_deref() == Some(kid)));
        let may_fetch = state
            .last_fetch
            .is_none_or(|t| now.duration_since(t) >= REFETCH_AT_MOST);
        if (stale || unknown) && may_fetch {
            state.last_fetch = Some(now);
            match self.fetch().await {
                Ok((keys, fresh)) => {
                    let until = now + fresh;
                    for key in keys {
                        // A key listed again lives on; one listed anew joins.
                        state
                            .keys
                            .retain(|c| c.key.kid != key.kid || c.key.alg != key.alg);
                        state.keys.push(Cached { key, until });
                    }
                    state.fresh_until = Some(until);
                }
                Err(e) => {
                    tracing::warn!(jwks_url = %self.url, error = %e, "JWKS not fetched; using the keys held")
                }
            }
        }
        state.keys.retain(|c| c.until > now);
        // The keys listed most recently are the ones tokens are being signed with now.
        state.keys.sort_by_key(|c| std::cmp::Reverse(c.until));
        state.keys.truncate(MAX_KEYS);
        state.keys.iter().map(|c| c.key.clone()).collect()
    }

    /// Fetches the set now and keeps exactly what it lists, dropping every key it no
    /// longer does (an operator's answer to a compromised key, which would otherwise be
    /// honoured until the copy that listed it went stale). On failure nothing changes.
    /// Returns the kids now held.
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        let mut state = self.state.lock().await;
        let (keys, fresh) = self.fetch().await?;
        let now = Instant::now();
        let until = now + fresh;
        state.keys = keys
            .into_iter()
            .take(MAX_KEYS)
            .map(|key| Cached { key, until })
            .collect();
        state.fresh_until = Some(until);
        state.last_fetch = Some(now);
        Ok(state
            .keys
            .iter()
            .map(|c| c.key.kid.clone().unwrap_or_default())
            .collect())
    }

    async fn fetch(&self) -> Result<(Vec<VerifyingKey>, Duration), String> {
        crate::outbound::check_url(&self.url, self.allow_private)?;
        let client =
            crate::outbound::client(self.allow_private, TIMEOUT).map_err(|e| e.to_string())?;
        let mut response = client
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let fresh = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_FRESH)
            .clamp(MIN_FRESH, MAX_FRESH);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(format!("the JWKS is larger than {MAX_DOCUMENT} bytes"));
            }
        }
        Ok((parse(&body)?, fresh))
    }
}

/// `max-age=N` of a Cache-Control header (`no-store`/`no-cache`: no time at all, which
/// the caller raises to [`MIN_FRESH`]).
fn max_age(header: &str) -> Option<Duration> {
    header.split(',').map(str::trim).find_map(|d| {
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        let (name, value) = d.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))?
    })
}

/// The usable keys of a JWKS document; others (no kid, symmetric, unsupported) are skipped.
pub fn parse(document: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let set: JwkSet = serde_json::from_slice(document).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in set.keys.iter().take(MAX_KEYS) {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let implied = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Some(Algorithm::ES256)
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Some(Algorithm::EdDSA)
            }
            _ => None,
        };
        let stated = jwk.common.key_algorithm.map(|a| match a {
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            _ => None,
        });
        let alg = match (stated, implied) {
            (None, Some(implied)) => implied,
            (Some(Some(stated)), Some(implied)) if stated == implied => stated,
            _ => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        keys.push(VerifyingKey::new(Some(kid), alg, key));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=oops"), None);
    }

    /// Symmetric keys, keys without kid, and keys whose alg contradicts their type are
    /// not taken; a damaged document is an error, not a panic.
    #[test]
    fn only_public_keys_with_one_algorithm_are_taken() {
        let doc = br#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "RS256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ok", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let keys = parse(doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].kid.as_deref(), keys[0].alg),
            (Some("ok"), Algorithm::EdDSA)
        );
        assert!(parse(b"{").is_err());
        assert!(parse(b"{\"keys\": 5}").is_err());
    }
}
