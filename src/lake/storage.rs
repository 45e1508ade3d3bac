//! Where the lake's files live: a local directory or an S3 (or S3-compatible) bucket prefix.
//!
//! iceberg writes and reads every file through its `FileIO`, built from the storage factory that
//! this module picks: a local warehouse keeps the core crate's local-filesystem storage, so its
//! plain-path locations (and catalogs written before S3 existed) stay exactly as they were; an
//! S3 warehouse gets `iceberg-storage-opendal`'s resolving factory, which serves `s3://` (and
//! `file://`) locations with the `s3.*` properties. `FileIO` cannot list, yet removing a dead
//! attempt's files and pruning old runs must find files nobody recorded, so an opendal `Operator`
//! rooted at the warehouse lists and deletes; both kinds of warehouse go through it, so the local
//! tests exercise the same code as S3.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder, LocalFsStorageFactory, StorageFactory};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use opendal::{EntryMode, ErrorKind, Operator};

use crate::config::S3Settings;
use crate::error::{Error, Result};

/// The configured warehouse.
#[derive(Debug, Clone)]
pub enum Warehouse {
    /// A local directory, created if missing.
    Local(PathBuf),
    S3(S3Settings),
}

/// The warehouse opened: its URL, the `FileIO` properties and a lister.
pub struct LakeStorage {
    /// Absolute local path (or its `file://` URL) or `s3://bucket[/prefix]`, without a trailing
    /// `/`: every location in the lake is this, `/`, and a path relative to the warehouse.
    url: String,
    factory: Arc<dyn StorageFactory>,
    /// `s3.*` properties for `FileIO` (and so the catalog); empty for a local warehouse.
    props: HashMap<String, String>,
    file_io: FileIO,
    op: Operator,
}

impl std::fmt::Debug for LakeStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The properties hold the secret key: never print them.
        f.debug_struct("LakeStorage")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn opendal_error(what: &str, e: opendal::Error) -> Error {
    Error::unavailable(format!("lake storage: {what}: {e}"))
}

impl LakeStorage {
    /// Opens the warehouse. A local one's locations are plain absolute paths, as SQL catalogs
    /// written by earlier versions hold them, or `file://` URLs (`file_urls`), which REST
    /// catalogs require.
    pub fn open(w: &Warehouse, file_urls: bool) -> Result<LakeStorage> {
        match w {
            Warehouse::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::config(format!(
                        "lake.warehouse: cannot create {}: {e}",
                        dir.display()
                    ))
                })?;
                let dir = dir.canonicalize()?;
                let path = dir.to_string_lossy().into_owned();
                let op = Operator::new(opendal::services::Fs::default().root(&path))
                    .map_err(|e| opendal_error(&path, e))?
                    .finish();
                let url = if file_urls {
                    format!("file://{path}")
                } else {
                    path
                };
                let factory: Arc<dyn StorageFactory> = Arc::new(LocalFsStorageFactory);
                Ok(LakeStorage {
                    file_io: FileIOBuilder::new(factory.clone()).build(),
                    url,
                    factory,
                    props: HashMap::new(),
                    op,
                })
            }
            Warehouse::S3(s3) => {
                let mut props = HashMap::from([
                    ("s3.region".to_string(), s3.region.clone()),
                    (
                        "s3.access-key-id".to_string(),
                        s3.access_key_id.expose().to_string(),
                    ),
                    (
                        "s3.secret-access-key".to_string(),
                        s3.secret_access_key.expose().to_string(),
                    ),
                    (
                        "s3.path-style-access".to_string(),
                        s3.path_style.to_string(),
                    ),
                    // The credentials are the configured ones: no profile files or instance
                    // metadata lookups that could pick up another identity.
                    ("s3.disable-config-load".to_string(), "true".to_string()),
                    ("s3.disable-ec2-metadata".to_string(), "true".to_string()),
                ]);
                let mut b = opendal::services::S3::default()
                    .bucket(&s3.bucket)
                    .root(&format!("/{}", s3.prefix))
                    .region(&s3.region)
                    .access_key_id(s3.access_key_id.expose())
                    .secret_access_key(s3.secret_access_key.expose())
                    .disable_config_load()
                    .disable_ec2_metadata();
                if let Some(e) = &s3.endpoint {
                    props.insert("s3.endpoint".to_string(), e.clone());
                    b = b.endpoint(e);
                }
                if !s3.path_style {
                    b = b.enable_virtual_host_style();
                }
                let url = s3.url();
                let op = Operator::new(b)
                    .map_err(|e| opendal_error(&url, e))?
                    .finish();
                let factory: Arc<dyn StorageFactory> =
                    Arc::new(OpenDalResolvingStorageFactory::new());
                Ok(LakeStorage {
                    file_io: FileIOBuilder::new(factory.clone())
                        .with_props(props.clone())
                        .build(),
                    url,
                    factory,
                    props,
                    op,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn factory(&self) -> Arc<dyn StorageFactory> {
        self.factory.clone()
    }

    /// Properties the catalog passes on to the `FileIO` of the tables it loads.
    pub fn props(&self) -> &HashMap<String, String> {
        &self.props
    }

    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// The location of `rel` (a `/`-separated path inside the warehouse).
    pub fn location(&self, rel: &str) -> String {
        format!("{}/{}", self.url, rel.trim_matches('/'))
    }

    /// Entries directly inside the directory `rel`: (name, is a directory). A missing directory
    /// has none.
    async fn entries(&self, rel: &str) -> Result<Vec<(String, bool)>> {
        let dir = format!("{}/", rel.trim_matches('/'));
        let listed = match self.op.list(&dir).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(opendal_error(&format!("list {}", self.location(rel)), e)),
        };
        Ok(listed
            .into_iter()
            // Listing is by prefix and may return the directory itself.
            .filter(|e| e.path().trim_end_matches('/') != dir.trim_end_matches('/'))
            .map(|e| {
                let is_dir = e.metadata().mode() == EntryMode::DIR || e.path().ends_with('/');
                (e.name().trim_end_matches('/').to_string(), is_dir)
            })
            .collect())
    }

    /// Locations of every file below `rel`, at any depth, in one listing (on S3 one paginated
    /// ListObjects, however many partition directories there are). A missing directory has none.
    pub async fn list_files_below(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .file_entries_below(rel)
            .await?
            .into_iter()
            .map(|e| self.location(e.path()))
            .collect())
    }

    /// The listing entries of every file below `rel` (see [`Self::list_files_below`]).
    async fn file_entries_below(&self, rel: &str) -> Result<Vec<opendal::Entry>> {
        let dir = format!("{}/", rel.trim_matches('/'));
        let listed = match self.op.list_with(&dir).recursive(true).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(opendal_error(&format!("list {}", self.location(rel)), e)),
        };
        Ok(listed
            .into_iter()
            .filter(|e| e.metadata().mode() == EntryMode::FILE && !e.path().ends_with('/'))
            .collect())
    }

    /// Like [`Self::list_files_below`], with each file's modification time in milliseconds
    /// since the epoch (from the listing where the store gives it, as S3 does, else from the
    /// file's metadata; none when the store knows no time).
    pub async fn list_files_below_with_time(
        &self,
        rel: &str,
    ) -> Result<Vec<(String, Option<i64>)>> {
        let listed = self.file_entries_below(rel).await?;
        let to_ms = |t: opendal::raw::Timestamp| {
            std::time::SystemTime::from(t)
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .ok()
        };
        let mut out = Vec::new();
        for e in listed {
            let modified = match e.metadata().last_modified() {
                Some(t) => to_ms(t),
                None => match self.op.stat(e.path()).await {
                    Ok(m) => m.last_modified().and_then(to_ms),
                    // Gone since the listing: nothing to decide about it.
                    Err(err) if err.kind() == ErrorKind::NotFound => continue,
                    Err(err) => {
                        return Err(opendal_error(
                            &format!("stat {}", self.location(e.path())),
                            err,
                        ));
                    }
                },
            };
            out.push((self.location(e.path()), modified));
        }
        Ok(out)
    }

    /// Names of the directories directly inside `rel`.
    pub async fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .entries(rel)
            .await?
            .into_iter()
            .filter(|(_, dir)| *dir)
            .map(|(name, _)| name)
            .collect())
    }

    /// Deletes the file at `location` (one inside the warehouse).
    pub async fn delete_file(&self, location: &str) -> Result<()> {
        let rel = self.relative(location)?;
        self.op
            .delete(rel)
            .await
            .map_err(|e| opendal_error(&format!("delete {location}"), e))
    }

    /// Deletes the directory `rel` and everything under it.
    pub async fn delete_dir(&self, rel: &str) -> Result<()> {
        let dir = format!("{}/", rel.trim_matches('/'));
        self.op
            .delete_with(&dir)
            .recursive(true)
            .await
            .map_err(|e| opendal_error(&format!("delete {}", self.location(rel)), e))
    }

    /// `location` relative to the warehouse, or an error if it lies outside.
    fn relative<'l>(&self, location: &'l str) -> Result<&'l str> {
        location
            .strip_prefix(&self.url)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Error::internal(format!(
                    "{location} is not inside the lake warehouse {}",
                    self.url
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_lists_and_deletes_like_the_filesystem() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LakeStorage::open(&Warehouse::Local(tmp.path().join("wh")), false).unwrap();
        let root = tmp.path().join("wh").canonicalize().unwrap();
        assert_eq!(s.url(), root.to_string_lossy());
        std::fs::create_dir_all(root.join("ns/t/r1/data")).unwrap();
        std::fs::create_dir_all(root.join("ns/t/r2")).unwrap();
        std::fs::write(root.join("ns/t/r1/data/a.parquet"), b"x").unwrap();
        std::fs::write(root.join("ns/t/r1/data/b.parquet"), b"y").unwrap();
        // A partition directory: listed through, at any depth.
        std::fs::create_dir_all(root.join("ns/t/r1/data/D_day=2021-01-01")).unwrap();
        std::fs::write(root.join("ns/t/r1/data/D_day=2021-01-01/c.parquet"), b"z").unwrap();
        let mut dirs = s.list_dirs("ns/t").await.unwrap();
        dirs.sort();
        assert_eq!(dirs, ["r1", "r2"]);
        let mut files = s.list_files_below("ns/t/r1/data").await.unwrap();
        files.sort();
        let a = root.join("ns/t/r1/data/a.parquet");
        let loc = |p: &str| root.join(p).to_string_lossy().into_owned();
        assert_eq!(
            files,
            [
                loc("ns/t/r1/data/D_day=2021-01-01/c.parquet"),
                loc("ns/t/r1/data/a.parquet"),
                loc("ns/t/r1/data/b.parquet"),
            ]
        );
        assert!(s.list_files_below("ns/missing").await.unwrap().is_empty());
        s.delete_file(&files[1]).await.unwrap();
        assert!(!a.exists());
        assert!(s.delete_file("/elsewhere/x.parquet").await.is_err());
        s.delete_dir("ns/t/r1").await.unwrap();
        assert!(!root.join("ns/t/r1").exists());
        assert!(root.join("ns/t/r2").exists());
    }

    #[tokio::test]
    async fn local_locations_can_be_file_urls() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LakeStorage::open(&Warehouse::Local(tmp.path().join("wh")), true).unwrap();
        let root = tmp.path().join("wh").canonicalize().unwrap();
        let url = format!("file://{}", root.display());
        assert_eq!(s.url(), url);
        assert_eq!(s.location("ns/t"), format!("{url}/ns/t"));
        std::fs::create_dir_all(root.join("ns/t/r1/data")).unwrap();
        std::fs::write(root.join("ns/t/r1/data/a.parquet"), b"x").unwrap();
        let files = s.list_files_below("ns/t").await.unwrap();
        assert_eq!(files, [format!("{url}/ns/t/r1/data/a.parquet")]);
        // FileIO reads the URL, and the lister deletes by it.
        let bytes = s
            .file_io()
            .new_input(&files[0])
            .unwrap()
            .read()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"x");
        s.delete_file(&files[0]).await.unwrap();
        assert!(!root.join("ns/t/r1/data/a.parquet").exists());
    }

    #[test]
    fn debug_hides_the_s3_keys() {
        let s = LakeStorage::open(
            &Warehouse::S3(S3Settings {
                bucket: "bkt".into(),
                prefix: "p".into(),
                endpoint: Some("http://127.0.0.1:1".into()),
                region: "us-east-1".into(),
                access_key_id: crate::config::Secret::new("AKIDKEY"),
                secret_access_key: crate::config::Secret::new("SUPERSECRET"),
                path_style: true,
            }),
            false,
        )
        .unwrap();
        assert_eq!(s.location("ns/t/r"), "s3://bkt/p/ns/t/r");
        let shown = format!("{s:?}");
        assert!(!shown.contains("SUPERSECRET") && !shown.contains("AKIDKEY"));
    }
}
