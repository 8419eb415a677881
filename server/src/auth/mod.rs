//! Who is calling: sign-in JWTs checked against an org's keys ([`jwt`]), the claims that name
//! or create a user ([`identity`]), and the server's own session tokens ([`session`]).

pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod orgs;
pub mod rate_limit;
pub mod session;
pub mod shared_limit;
