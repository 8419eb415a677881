//! Verification of sign-in JWTs, strict per RFC 8725: each configured key accepts exactly one
//! algorithm, chosen by the key and never by the token; `none` is refused; `exp` is required;
//! `nbf`, `iat`, `aud` and `iss` are checked; leeway is at most 60 s.

use crate::config::{KeyConfig, OrgConfig};
use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One verification key of an org.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

/// An org's sign-in rules, built once at start from its configuration.
pub struct OrgAuth {
    pub id: String,
    pub name: Option<String>,
    pub keys: Vec<VerifyingKey>,
    pub audience: Vec<String>,
    pub issuer: Option<String>,
    pub leeway: u64,
    pub ephemeral_tokens: Vec<String>,
    /// Visitor tokens added through the admin API: their SHA-256, hex.
    pub visitor_token_hashes: Vec<String>,
    /// Whether the configuration file defines this org (its settings are then the file's).
    pub in_file: bool,
    /// Where the org's identity provider publishes more keys (see `jwks.rs`).
    pub jwks_url: Option<String>,
    /// What visitors may look up (see `OrgConfig::visitor_tags`).
    pub visitor_tags: Vec<String>,
}

/// The verified claims of a sign-in token.
pub type Claims = Map<String, Value>;

fn parse_alg(name: &str) -> Result<Algorithm, String> {
    match name {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!(
            "unsupported key algorithm {other:?} (use HS256, RS256, ES256 or EdDSA)"
        )),
    }
}

impl VerifyingKey {
    pub fn from_config(org: &str, k: &KeyConfig) -> Result<Self, String> {
        let alg = parse_alg(&k.alg).map_err(|e| format!("org {org:?}: {e}"))?;
        let pem = || -> Result<Vec<u8>, String> {
            match (&k.public_key_pem, &k.public_key_file) {
                (Some(p), None) => Ok(p.as_bytes().to_vec()),
                (None, Some(f)) => std::fs::read(f)
                    .map_err(|e| format!("org {org:?}: cannot read {}: {e}", f.display())),
                _ => Err(format!(
                    "org {org:?}: a {} key needs exactly one of public_key_pem or public_key_file",
                    k.alg
                )),
            }
        };
        let key = match alg {
            Algorithm::HS256 => {
                let secret = match (&k.secret, &k.secret_env) {
                    (Some(s), None) => s.clone(),
                    (None, Some(var)) => std::env::var(var).map_err(|_| {
                        format!("org {org:?}: environment variable {var} is not set")
                    })?,
                    _ => {
                        return Err(format!(
                            "org {org:?}: an HS256 key needs exactly one of secret or secret_env"
                        ))
                    }
                };
                if secret.len() < 32 {
                    return Err(format!(
                        "org {org:?}: an HS256 secret must be at least 32 bytes"
                    ));
                }
                Ok(DecodingKey::from_secret(secret.as_bytes()))
            }
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem()?),
            Algorithm::ES256 => DecodingKey::from_ec_pem(&pem()?),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem()?),
            _ => unreachable!("parse_alg allows no other"),
        }
        .map_err(|e| format!("org {org:?}: invalid {} public key: {e}", k.alg))?;
        Ok(VerifyingKey {
            kid: k.kid.clone(),
            alg,
            key,
        })
    }

    pub fn new(kid: Option<String>, alg: Algorithm, key: DecodingKey) -> Self {
        VerifyingKey { kid, alg, key }
    }

    pub fn hs256(kid: Option<String>, secret: &[u8]) -> Self {
        VerifyingKey {
            kid,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        }
    }
}

impl OrgAuth {
    pub fn from_config(org: &OrgConfig) -> Result<Self, String> {
        let keys = org
            .keys
            .iter()
            .map(|k| VerifyingKey::from_config(&org.id, k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OrgAuth {
            id: org.id.clone(),
            name: org.name.clone(),
            keys,
            audience: org.audience.clone(),
            issuer: org.issuer.clone(),
            leeway: org.leeway_secs.unwrap_or(30),
            ephemeral_tokens: org.ephemeral_tokens.clone(),
            visitor_token_hashes: vec![],
            in_file: true,
            jwks_url: org.jwks_url.clone(),
            visitor_tags: org
                .visitor_tags
                .iter()
                .map(|t| t.trim_start_matches('@').to_ascii_lowercase())
                .collect(),
        })
    }

    /// Whether this org signs people in with JWTs at all (it has keys or a JWKS).
    pub fn takes_tokens(&self) -> bool {
        !self.keys.is_empty() || self.jwks_url.is_some()
    }

    /// Whether `token` is one of this org's visitor tokens. Compared in full against every
    /// one, so timing says nothing about a prefix.
    pub fn accepts_visitor_token(&self, token: &str) -> bool {
        let hashed = crate::admin::api_keys::hash_hex(token);
        let in_file = self.ephemeral_tokens.iter().fold(false, |hit, t| {
            hit | constant_time_eq(t.as_bytes(), token.as_bytes())
        });
        let added = self.visitor_token_hashes.iter().fold(false, |hit, t| {
            hit | constant_time_eq(t.as_bytes(), hashed.as_bytes())
        });
        in_file | added
    }

    /// Whether a token's header names a key (`kid`) that this org does not have.
    pub fn lacks_kid(&self, jwt: &str) -> bool {
        match peek_header(jwt) {
            Ok(PeekedHeader { kid: Some(kid), .. }) => !self
                .keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid.as_str())),
            _ => false,
        }
    }

    /// The `kid` a token's header names, if any (unverified: it only picks a key).
    pub fn kid_of(jwt: &str) -> Option<String> {
        peek_header(jwt).ok()?.kid
    }

    /// Verifies `jwt` and returns its claims.
    pub fn verify(&self, jwt: &str) -> Result<Claims, ApiError> {
        self.verify_also_with(jwt, &[])
    }

    /// Verifies `jwt` with the org's own keys and `published` (its JWKS) and returns its
    /// claims.
    pub fn verify_also_with(
        &self,
        jwt: &str,
        published: &[VerifyingKey],
    ) -> Result<Claims, ApiError> {
        let header = peek_header(jwt)?;
        let keys = || self.keys.iter().chain(published);
        let candidates: Vec<&VerifyingKey> = match &header.kid {
            Some(kid) => {
                let key = keys()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "token_unknown_key",
                            format!("no key with kid {kid:?} is configured for this org"),
                        )
                    })?;
                vec![key]
            }
            None => keys().collect(),
        };
        if candidates.is_empty() {
            return Err(ApiError::unauthorized(
                "token_unknown_key",
                "this org accepts no signed tokens",
            ));
        }
        // The algorithm is the key's; a token claiming another one is refused before any
        // signature check, so `none` and algorithm-confusion tokens never get that far.
        let matching: Vec<&VerifyingKey> = candidates
            .into_iter()
            .filter(|k| alg_name(k.alg) == header.alg)
            .collect();
        if matching.is_empty() {
            return Err(ApiError::unauthorized(
                "token_wrong_algorithm",
                format!("algorithm {:?} is not accepted for this key", header.alg),
            ));
        }
        let mut last = None;
        for key in matching {
            match self.verify_with(jwt, key) {
                Ok(claims) => return Ok(claims),
                Err(e) if e.code == "token_bad_signature" => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one key was tried"))
    }

    fn verify_with(&self, jwt: &str, key: &VerifyingKey) -> Result<Claims, ApiError> {
        let mut v = Validation::new(key.alg);
        v.leeway = self.leeway.min(60);
        v.validate_exp = true;
        v.validate_nbf = true;
        // A configured audience or issuer is required, not only checked when present (RFC
        // 8725 3.9/3.10): otherwise any other token the site signs with this key, for
        // another service and without the claim, would sign people in here.
        let mut required = vec!["exp"];
        if !self.audience.is_empty() {
            required.push("aud");
        }
        if self.issuer.is_some() {
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        let data = jsonwebtoken::decode::<Claims>(jwt, &key.key, &v).map_err(map_error)?;
        let claims = data.claims;
        // jsonwebtoken does not check `iat`; a token issued in the future is refused too.
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_i64()
                .ok_or_else(|| ApiError::unauthorized("token_invalid", "iat must be a number"))?;
            if iat > crate::db::now_secs() + v.leeway as i64 {
                return Err(ApiError::unauthorized(
                    "token_not_yet_valid",
                    "the token was issued in the future",
                ));
            }
        }
        if !claims.get("exp").is_some_and(Value::is_number) {
            return Err(ApiError::unauthorized(
                "token_missing_claim",
                "the token has no exp claim",
            ));
        }
        for (claim, wanted) in [
            ("aud", !self.audience.is_empty()),
            ("iss", self.issuer.is_some()),
        ] {
            if wanted && !claims.contains_key(claim) {
                return Err(ApiError::unauthorized(
                    "token_missing_claim",
                    format!("the token has no {claim} claim"),
                ));
            }
        }
        // A token made for one org signs in to that org only.
        if let Some(org) = claims.get("org") {
            if org.as_str() != Some(self.id.as_str()) {
                return Err(ApiError::unauthorized(
                    "token_wrong_org",
                    "the token is for another org",
                ));
            }
        }
        Ok(claims)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Reads the (unverified) header only to choose a key; nothing in it is trusted.
fn peek_header(jwt: &str) -> Result<PeekedHeader, ApiError> {
    let malformed =
        || ApiError::unauthorized("token_malformed", "the token is not a well-formed JWT");
    let mut parts = jwt.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// Reads the (unverified) payload only to choose an org; it is verified afterwards.
pub fn peek_claims(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn map_error(e: jsonwebtoken::errors::Error) -> ApiError {
    let (code, message) = match e.kind() {
        ErrorKind::ExpiredSignature => ("token_expired", "the token has expired".to_string()),
        ErrorKind::ImmatureSignature => (
            "token_not_yet_valid",
            "the token is not valid yet (nbf)".to_string(),
        ),
        ErrorKind::InvalidAudience => (
            "token_wrong_audience",
            "the token is for another audience".to_string(),
        ),
        ErrorKind::InvalidIssuer => (
            "token_wrong_issuer",
            "the token comes from another issuer".to_string(),
        ),
        ErrorKind::InvalidSignature => (
            "token_bad_signature",
            "the token's signature does not verify".to_string(),
        ),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => (
            "token_wrong_algorithm",
            "the token's algorithm is not accepted".to_string(),
        ),
        ErrorKind::MissingRequiredClaim(c) => {
            ("token_missing_claim", format!("the token has no {c} claim"))
        }
        _ => (
            "token_invalid",
            "the token could not be verified".to_string(),
        ),
    };
    ApiError::unauthorized(code, message)
}

/// All configured orgs, by id.
#[derive(Default)]
pub struct Orgs(pub HashMap<String, OrgAuth>);

impl Orgs {
    pub fn get(&self, id: &str) -> Result<&OrgAuth, ApiError> {
        self.0.get(id).ok_or_else(|| {
            ApiError::not_found("unknown_org", format!("no org {id:?} on this server"))
        })
    }

    /// Picks the org a JWT is for: the one the request names, else the token's `org`
    /// claim, else the org whose issuer matches `iss`, else the only org.
    pub fn for_jwt(&self, requested: Option<&str>, jwt: &str) -> Result<&OrgAuth, ApiError> {
        if let Some(id) = requested {
            return self.get(id);
        }
        let claims = peek_claims(jwt).unwrap_or_default();
        if let Some(id) = claims.get("org").and_then(Value::as_str) {
            return self.get(id);
        }
        let required = || {
            ApiError::bad_request(
                "org_required",
                "name the org: in the request, or as the token's org claim",
            )
        };
        if let Some(iss) = claims.get("iss").and_then(Value::as_str) {
            let mut with_issuer = self.0.values().filter(|o| o.issuer.as_deref() == Some(iss));
            match (with_issuer.next(), with_issuer.next()) {
                (Some(org), None) => return Ok(org),
                // Never a guess between orgs: the token must say which.
                (Some(_), Some(_)) => return Err(required()),
                _ => {}
            }
        }
        // The only org that takes signed tokens (a server with one tenant), preferring the
        // configuration file's: an org made later through the API does not change where
        // the file's org's tokens go.
        for candidates in [
            self.0
                .values()
                .filter(|o| o.in_file && o.takes_tokens())
                .collect::<Vec<_>>(),
            self.0.values().filter(|o| o.takes_tokens()).collect(),
        ] {
            if let [only] = candidates[..] {
                return Ok(only);
            }
        }
        Err(required())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn org() -> OrgAuth {
        OrgAuth {
            id: "o".into(),
            name: None,
            keys: vec![VerifyingKey::hs256(Some("k".into()), &[7; 32])],
            audience: vec!["a".into()],
            issuer: Some("i".into()),
            leeway: 30,
            ephemeral_tokens: vec![],
            visitor_token_hashes: vec![],
            in_file: true,
            jwks_url: None,
            visitor_tags: vec![],
        }
    }

    /// A token that names only its issuer goes to the one org with that issuer, never to
    /// a guess between two.
    #[test]
    fn an_issuer_two_orgs_share_picks_neither() {
        let token = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"iss":"i"}"#)
        );
        let mut orgs = Orgs::default();
        orgs.0.insert("o".into(), org());
        assert_eq!(orgs.for_jwt(None, &token).unwrap().id, "o");
        orgs.0.insert(
            "p".into(),
            OrgAuth {
                id: "p".into(),
                ..org()
            },
        );
        assert_eq!(
            orgs.for_jwt(None, &token).err().unwrap().code,
            "org_required"
        );
    }

    /// Three dot-separated parts of base64url-ish text, or anything at all.
    fn tokenish() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
            proptest::collection::vec(any::<u8>(), 0..80)
                .prop_map(|header| { format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(header)) }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a client sends as a token, the answer is a typed refusal, not a panic.
        #[test]
        fn arbitrary_tokens_are_refused_cleanly(jwt in tokenish()) {
            let _ = peek_header(&jwt);
            let _ = peek_claims(&jwt);
            prop_assert!(org().verify(&jwt).is_err());
        }
    }
}
