//! The HTTP API, one file per area. Every handler answers JSON, and every failure is an
//! [`ApiError`](crate::error::ApiError).

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod demo;
pub mod devices;
pub mod directory;
pub mod envelopes;
pub mod health;
pub mod json;
pub mod keys;
pub mod links;
