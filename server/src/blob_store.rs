//! Where attachments' bytes (ciphertext only) are kept: an object store, through the
//! `object_store` crate. A local directory by default; for several nodes, one S3-compatible
//! bucket they all share (`blob_store = "s3://bucket/prefix"`, credentials and endpoint
//! from the standard `AWS_*` environment variables). The database keeps who uploaded what.

use crate::error::ApiError;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::sync::Arc;

/// The `blob_store` setting: a directory, or an S3 URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Directory(PathBuf),
    /// `s3://bucket` or `s3://bucket/prefix`.
    S3(String),
}

impl StoreLocation {
    pub fn parse(setting: &str) -> StoreLocation {
        if setting.starts_with("s3://") {
            StoreLocation::S3(setting.to_owned())
        } else {
            StoreLocation::Directory(PathBuf::from(setting))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Directory(dir) => write!(f, "{}", dir.display()),
            StoreLocation::S3(url) => f.write_str(url),
        }
    }
}

/// Whether `name` is a blob ID as the server makes them (`b_` and 32 hex digits).
fn is_blob_id(name: &str) -> bool {
    name.strip_prefix("b_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where attachments' bytes are kept.
#[derive(Clone)]
pub struct BlobStore(Arc<dyn ObjectStore>);

fn store_failed(e: object_store::Error) -> ApiError {
    ApiError::internal(format!("blob store: {e}"))
}

impl BlobStore {
    /// The store at `location`, checked by writing and deleting a probe (a store that
    /// cannot be written refuses to start, rather than fail uploads). A directory is
    /// created if needed, and every write to it is flushed to disk before it counts, as
    /// the database's commits are; an S3 bucket must exist.
    pub async fn open(location: &StoreLocation) -> Result<BlobStore, String> {
        let failed = |e: &dyn std::fmt::Display| format!("blob store {location}: {e}");
        let store: Arc<dyn ObjectStore> = match location {
            StoreLocation::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| failed(&e))?
                    .with_fsync(true);
                Arc::new(fs)
            }
            StoreLocation::S3(url) => {
                let s3 = AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| failed(&e))?;
                let prefix = url
                    .trim_start_matches("s3://")
                    .split_once('/')
                    .map(|(_, p)| p.trim_matches('/'))
                    .unwrap_or_default();
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                }
            }
        };
        // The store's own error, with its cause, for the operator reading why it stopped.
        // Named per start: nodes (or a node and the CLI) starting together on one store
        // must not delete each other's probe.
        let probe = Self::path(&crate::db::new_id("probe-written-at-start"));
        store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await
            .map_err(|e| failed(&e))?;
        store.delete(&probe).await.map_err(|e| failed(&e))?;
        Ok(BlobStore(store))
    }

    fn path(id: &str) -> StorePath {
        StorePath::from(id)
    }

    pub async fn put(&self, id: &str, data: Bytes) -> Result<(), ApiError> {
        self.0
            .put(&Self::path(id), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(store_failed)
    }

    pub async fn get(&self, id: &str) -> Result<Bytes, ApiError> {
        let found = self.0.get(&Self::path(id)).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                // The row says the bytes are here: they were lost.
                tracing::error!(blob = %id, "attachment bytes missing from the blob store");
                ApiError::not_found("unknown_blob", "no such attachment")
            }
            e => store_failed(e),
        })?;
        found.bytes().await.map_err(store_failed)
    }

    /// Whether blob `id`'s bytes are in the store.
    pub async fn contains(&self, id: &str) -> Result<bool, ApiError> {
        match self.0.head(&Self::path(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_failed(e)),
        }
    }

    /// Deletes blob `id`'s bytes; bytes already gone are fine.
    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        match self.0.delete(&Self::path(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_failed(e)),
        }
    }

    /// Up to `limit` blob IDs whose bytes were written at or before `cutoff` (Unix seconds).
    /// Only names shaped like the blob IDs the server makes count: anything else in the
    /// directory or bucket is not the server's to judge.
    pub async fn written_before(&self, cutoff: i64, limit: usize) -> Result<Vec<String>, ApiError> {
        let mut listed = self.0.list(None);
        let mut old = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(store_failed)?;
            if is_blob_id(meta.location.as_ref()) && meta.last_modified.timestamp() <= cutoff {
                old.push(meta.location.to_string());
                if old.len() >= limit {
                    break;
                }
            }
        }
        Ok(old)
    }
}
