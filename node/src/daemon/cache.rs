//! The content-addressed blob cache: `DATA_DIR/blobs/<0xhash>`. A file is only ever stored
//! under the keccak256 of its bytes, checked again every time it is used, so a wrong answer from
//! the relayer or a corrupted disk can never feed a job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alloy::primitives::{B256, keccak256};
use tracing::{debug, warn};

use super::client::{RelayClient, RelayError};

/// Why a blob could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The relayer served bytes that do not hash to the requested id.
    #[error("the relayer served {size} bytes for {expected} that hash to {actual}; refusing them")]
    HashMismatch {
        /// The id asked for.
        expected: B256,
        /// keccak256 of what was served.
        actual: B256,
        /// How many bytes were served.
        size: usize,
    },
    /// Fetching failed.
    #[error("cannot fetch blob {hash}: {source}")]
    Fetch {
        /// The blob.
        hash: B256,
        /// Why.
        source: Box<RelayError>,
    },
    /// The cache directory cannot be used.
    #[error("blob cache {path}: {source}; check the data_dir and its permissions")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The blob cache of one data dir.
#[derive(Debug)]
pub struct BlobCache {
    dir: PathBuf,
    /// One lock per blob, so two jobs needing one model download it once.
    locks: Mutex<HashMap<B256, Arc<tokio::sync::Mutex<()>>>>,
}

impl BlobCache {
    /// Opens (creating) `dir`, which must be absolute (the sandbox gets paths inside it).
    pub fn open(dir: PathBuf) -> Result<Self, BlobError> {
        std::fs::create_dir_all(&dir)
            .map_err(|source| BlobError::Io { path: dir.clone(), source })?;
        Ok(Self { dir, locks: Mutex::new(HashMap::new()) })
    }

    /// Where blob `hash` is stored.
    pub fn path(&self, hash: B256) -> PathBuf {
        self.dir.join(hash.to_string())
    }

    fn lock(&self, hash: B256) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(hash).or_default().clone()
    }

    /// The path and bytes of blob `hash`, fetched from the relayer unless a cached copy still
    /// hashes right. At most `limit` bytes; retried until `deadline` while the relayer is
    /// unreachable. The bytes are returned (read under the blob's lock) so a concurrent
    /// [`BlobCache::evict`] cannot pull the file away between the check and the use.
    pub(crate) async fn get(
        &self,
        client: &RelayClient,
        hash: B256,
        limit: u64,
        deadline: u64,
    ) -> Result<(PathBuf, Vec<u8>), BlobError> {
        let lock = self.lock(hash);
        let _guard = lock.lock().await;
        let path = self.path(hash);
        if let Some(cached) = read_if_exists(&path).await? {
            let (cached, actual) = hash_off_thread(cached, &path).await?;
            if actual == hash {
                debug!(%hash, "blob cache hit");
                return Ok((path, cached));
            }
            warn!(%hash, path = %path.display(), "cached blob is corrupt; fetching it again");
            remove(&path).await?;
        }
        let bytes = client
            .blob(hash, limit, deadline)
            .await
            .map_err(|e| BlobError::Fetch { hash, source: Box::new(e) })?;
        let size = bytes.len();
        let (bytes, actual) = hash_off_thread(bytes, &path).await?;
        if actual != hash {
            return Err(BlobError::HashMismatch { expected: hash, actual, size });
        }
        // Write under a temporary name and rename, so a crash never leaves a partial file under
        // the blob's name.
        let tmp = self.dir.join(format!(".tmp-{hash}-{:016x}", rand::random::<u64>()));
        let io = |source| BlobError::Io { path: tmp.clone(), source };
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        debug!(%hash, size, "blob fetched and verified");
        Ok((path, bytes))
    }

    /// Removes blob `hash` (inputs are used once; models stay).
    pub async fn evict(&self, hash: B256) {
        let lock = self.lock(hash);
        let _guard = lock.lock().await;
        let _ = tokio::fs::remove_file(self.path(hash)).await;
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody is waiting for this blob.
        if locks.get(&hash).is_some_and(|l| Arc::strong_count(l) <= 2) {
            locks.remove(&hash);
        }
    }
}

async fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, BlobError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BlobError::Io { path: path.to_path_buf(), source }),
    }
}

async fn remove(path: &Path) -> Result<(), BlobError> {
    tokio::fs::remove_file(path)
        .await
        .map_err(|source| BlobError::Io { path: path.to_path_buf(), source })
}

/// keccak256 on a blocking thread (a large model takes a noticeable time to hash).
async fn hash_off_thread(bytes: Vec<u8>, path: &Path) -> Result<(Vec<u8>, B256), BlobError> {
    tokio::task::spawn_blocking(move || {
        let hash = keccak256(&bytes);
        (bytes, hash)
    })
    .await
    .map_err(|e| BlobError::Io { path: path.to_path_buf(), source: std::io::Error::other(e) })
}
