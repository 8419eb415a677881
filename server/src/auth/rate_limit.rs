//! Keyed rate limits (governor's GCRA), with bounded memory: sign-in per client address,
//! and sends, bundle claims, link requests and uploads per session. A refusal is `429`
//! with `Retry-After`.
//!
//! The client address is the TCP peer's, unless that peer is one of `trusted_proxies`:
//! then it is the nearest address in `X-Forwarded-For` that is not a trusted proxy (a
//! client can prepend anything to that header, but not what the proxies appended). IPv6
//! addresses count per /64, the block one subscriber usually gets, so an attacker cannot
//! pick a fresh address for every attempt.

use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// Checks between sweeps of keys that are back to a full allowance.
const SWEEP_EVERY: u64 = 10_000;

pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    what: &'static str,
    per_minute: u32,
    checks: AtomicU64,
}

impl RateLimiter {
    /// `per_minute` events per key, in bursts of up to that many.
    pub fn new(per_minute: u32, what: &'static str) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        RateLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
            what,
            per_minute: per_minute.max(1),
            checks: AtomicU64::new(0),
        }
    }

    /// [`RateLimiter::check`] on this node, then, when several nodes share the database
    /// (`across_nodes`), the same budget counted for all of them (`shared_limit.rs`).
    pub async fn check_everywhere(
        &self,
        key: &str,
        db: &crate::db::Db,
        across_nodes: bool,
    ) -> Result<(), ApiError> {
        self.check(key)?;
        if across_nodes {
            super::shared_limit::check(db, key, self.per_minute, self.what).await?;
        }
        Ok(())
    }

    /// [`RateLimiter::check`] on this node, and with several nodes the budget to count in
    /// the database too, for a caller that counts it in a transaction of its own (a send,
    /// in the group commit that stores it).
    pub fn check_here(
        &self,
        key: &str,
        across_nodes: bool,
    ) -> Result<Option<super::shared_limit::Budget>, ApiError> {
        self.check(key)?;
        Ok(across_nodes.then(|| super::shared_limit::Budget::new(self.what, key, self.per_minute)))
    }

    /// Takes one event for `key`, or refuses with `rate_limited` and when to try again.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Keys whose allowance is full again hold no information: forget them.
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                crate::metrics::count(
                    &crate::metrics::metrics().rate_limited,
                    &[("limit", self.what)],
                );
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many {}; try again in {secs} s", self.what),
                )
                .retry_after(secs.max(1))
            })
    }

    /// Keys held right now (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// An address block, `10.0.0.0/8` or `fd00::/8` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or address/prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(self.addr), canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(net)), self.prefix, 32)
                    == mask(u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), self.prefix, 128) == mask(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn mask(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The address a request comes from (see the module doc).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.iter().any(|c| c.contains(peer)) {
        return peer;
    }
    // Proxies append; walk back from the nearest hop past the trusted ones. A hop that is
    // not an address (`unknown`, garbage) ends the walk at the last trusted hop: what lies
    // before it was written by someone no proxy vouches for.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        if !trusted.iter().any(|c| c.contains(ip)) {
            return ip;
        }
        client = ip;
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    None
}

/// The key an address is limited under: itself for IPv4, its /64 for IPv6.
pub fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_limit_is_refused_with_when_to_retry() {
        let rl = RateLimiter::new(3, "attempts");
        assert!(rl.check("a").is_ok() && rl.check("a").is_ok() && rl.check("a").is_ok());
        let refused = rl.check("a").unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.code),
            (429, "rate_limited")
        );
        assert!(refused.retry_after.is_some_and(|s| (1..=20).contains(&s)));
        assert!(rl.check("b").is_ok(), "keys are separate");
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let from = |peer: IpAddr, forwarded: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", forwarded.parse().unwrap());
            client_ip(peer, &h, &trusted).to_string()
        };
        // The client prepended 6.6.6.6; the proxies vouch for 203.0.113.9.
        assert_eq!(from(proxy, "6.6.6.6, 203.0.113.9, 10.0.0.7"), "203.0.113.9");
        // Ports are stripped; a hop that is not an address ends the walk there.
        assert_eq!(from(proxy, "6.6.6.6, 203.0.113.9:4431"), "203.0.113.9");
        assert_eq!(from(proxy, "6.6.6.6, unknown, 10.0.0.7"), "10.0.0.7");
        assert_eq!(from(proxy, "6.6.6.6, [2001:db8::5]:443"), "2001:db8::5");
        // From an untrusted peer the header is ignored.
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            from(direct, "6.6.6.6, 203.0.113.9, 10.0.0.7"),
            "198.51.100.1"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_is_ipv4() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, address_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1"
        );
        assert!("fd00::/8"
            .parse::<Cidr>()
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!("bad".parse::<Cidr>().is_err() && "10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn keys_back_to_a_full_allowance_are_forgotten() {
        // 1,000 a minute: one event is refilled 60 ms later.
        let rl = RateLimiter::new(1_000, "attempts");
        for i in 0..(SWEEP_EVERY - 1) {
            rl.check(&format!("k{i}")).unwrap();
        }
        assert_eq!(rl.len(), (SWEEP_EVERY - 1) as usize);
        std::thread::sleep(std::time::Duration::from_millis(150));
        // The next check sweeps first: every earlier key is full again, so it goes.
        rl.check("last").unwrap();
        assert!(rl.len() <= 1, "{} keys kept", rl.len());
    }
}
