//! An Iceberg REST catalog, spoken to directly over HTTP (the REST catalog protocol:
//! `GET /v1/config`, namespaces, tables, and the table commit `POST .../tables/{table}` with its
//! requirements and updates).
//!
//! Why not iceberg's own REST client: a commit there can only be built by the crate's own
//! transaction actions (`TableCommit`'s builder is crate-private), which cannot write an
//! overwrite snapshot, and the tables it loads read files through a `FileIO` made from the
//! server's configuration rather than the warehouse dag writes to. So the few calls dag needs
//! are made here: a table is loaded as its metadata and metadata location (read through dag's
//! own storage), created by the first commit, and committed with exactly the updates that
//! `TableMetadataBuilder` recorded, guarded by the requirements of the state they were built on
//! (the table's uuid, its `main` branch's snapshot, its schema and partition spec): a commit by
//! another writer in between makes the server answer 409, and the commit is built again.
//!
//! Credentials are a bearer `token`, or an OAuth2 client `credential` (`client_id:secret`)
//! exchanged for a token at the catalog's token endpoint (again when the server says the token
//! expired). Neither is ever put in a message.

use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::{NamespaceIdent, TableRequirement, TableUpdate};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::{RestCatalogConfig, Secret};
use crate::error::{Error, Result};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long one request may take: commits of large tables write one metadata file.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) struct RestCatalog {
    http: reqwest::Client,
    /// The catalog's base URI, without a trailing `/` (`.../v1/...` follows it).
    base: String,
    /// `v1/` plus the prefix the server's configuration asks for, if any, plus `/`.
    root: String,
    credential: Option<Secret>,
    token_uri: String,
    scope: String,
    /// The bearer token sent: the configured one, or the last one the credential got.
    token: tokio::sync::Mutex<Option<Secret>>,
}

/// A table as the catalog has it.
pub(super) struct Loaded {
    pub metadata_location: String,
    pub metadata: TableMetadata,
}

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A namespace in a URL path: its levels joined by the unit separator, encoded.
fn ns_segment(ns: &NamespaceIdent) -> String {
    segment(&ns.join("\u{1f}"))
}

impl RestCatalog {
    /// Connects to the catalog at `uri`: gets a token if a credential is configured, then the
    /// server's configuration (for the configured catalog warehouse, if any), which may name a
    /// path prefix for every call.
    pub(super) async fn connect(uri: &str, cfg: &RestCatalogConfig) -> Result<RestCatalog> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::internal(format!("lake REST catalog {uri}: {e}")))?;
        let base = uri.trim_end_matches('/').to_string();
        let token_uri = cfg
            .oauth_uri
            .clone()
            .unwrap_or_else(|| format!("{base}/v1/oauth/tokens"));
        let mut cat = RestCatalog {
            http,
            root: "v1/".to_string(),
            base,
            credential: cfg.credential.clone(),
            token_uri,
            scope: cfg.scope.clone().unwrap_or_else(|| "catalog".to_string()),
            token: tokio::sync::Mutex::new(cfg.token.clone()),
        };
        if cat.credential.is_some() {
            cat.fetch_token().await?;
        }
        let path = match &cfg.warehouse {
            Some(wh) => format!("v1/config?warehouse={}", utf8_percent_encode(wh, SEGMENT)),
            None => "v1/config".to_string(),
        };
        let (status, body) = cat.call(Method::GET, &path, None).await?;
        let config = cat.expect_ok("read the catalog's configuration", status, &body)?;
        let prefix = ["overrides", "defaults"]
            .iter()
            .find_map(|k| config[k]["prefix"].as_str())
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty());
        if let Some(p) = prefix {
            let encoded: Vec<String> = p.split('/').map(segment).collect();
            cat.root = format!("v1/{}/", encoded.join("/"));
        }
        Ok(cat)
    }

    /// Exchanges the configured OAuth2 client credential for a bearer token.
    async fn fetch_token(&self) -> Result<()> {
        let Some(cred) = &self.credential else {
            return Ok(());
        };
        let (id, secret) = match cred.expose().split_once(':') {
            Some((id, secret)) => (Some(id), secret),
            None => (None, cred.expose()),
        };
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(id) = id {
                form.append_pair("client_id", id);
            }
            form.append_pair("client_secret", secret);
            form.append_pair("scope", &self.scope);
            form.finish()
        };
        let resp = self
            .http
            .post(&self.token_uri)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| self.unreachable(&self.token_uri, e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.unreachable(&self.token_uri, e))?;
        if !status.is_success() {
            return Err(Error::config(format!(
                "lake REST catalog {}: the token endpoint {} refused the credential ({status}{})",
                self.base,
                self.token_uri,
                server_message(&body)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
        let token = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(str::to_string))
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "lake REST catalog {}: the token endpoint {} answered without an \
                     access_token",
                    self.base, self.token_uri
                ))
            })?;
        *self.token.lock().await = Some(Secret::new(token));
        Ok(())
    }

    fn unreachable(&self, url: &str, e: reqwest::Error) -> Error {
        Error::unavailable(format!("lake REST catalog {}: {url}: {e}", self.base))
    }

    /// One call to `path` (below the base URI): its status and body. An expired token is
    /// renewed once from the credential.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let url = format!("{}/{path}", self.base);
        for renewed in [false, true] {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("Accept", "application/json");
            if let Some(t) = self.token.lock().await.as_ref() {
                req = req.bearer_auth(t.expose());
            }
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let resp = req.send().await.map_err(|e| self.unreachable(&url, e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| self.unreachable(&url, e))?;
            if status == StatusCode::UNAUTHORIZED && !renewed && self.credential.is_some() {
                self.fetch_token().await?;
                continue;
            }
            return Ok((status, bytes.to_vec()));
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The JSON body of a successful answer; any other status as a clear error naming what was
    /// asked (`what`).
    fn expect_ok(&self, what: &str, status: StatusCode, body: &[u8]) -> Result<Value> {
        if status.is_success() {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(body).map_err(|e| {
                Error::unavailable(format!(
                    "lake REST catalog {}: {what}: the answer is not JSON: {e}",
                    self.base
                ))
            });
        }
        Err(self.failure(what, status, body))
    }

    fn failure(&self, what: &str, status: StatusCode, body: &[u8]) -> Error {
        let detail = server_message(body)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let message = format!("lake REST catalog {}: {what}: {status}{detail}", self.base);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Error::config(format!("{message} (check lake.token or lake.credential)"))
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                Error::unavailable(message)
            }
            _ => Error::internal(message),
        }
    }

    fn table_path(&self, ns: &NamespaceIdent, table: &str) -> String {
        format!(
            "{}namespaces/{}/tables/{}",
            self.root,
            ns_segment(ns),
            segment(table)
        )
    }

    /// Creates the namespace `ns` unless it exists.
    pub(super) async fn ensure_namespace(&self, ns: &NamespaceIdent) -> Result<()> {
        let path = format!("{}namespaces/{}", self.root, ns_segment(ns));
        let (status, body) = self.call(Method::GET, &path, None).await?;
        if status.is_success() {
            return Ok(());
        }
        if status != StatusCode::NOT_FOUND {
            return Err(self.failure(&format!("look up namespace {ns:?}"), status, &body));
        }
        let create = json!({ "namespace": ns.as_ref(), "properties": {} });
        let path = format!("{}namespaces", self.root);
        let (status, body) = self.call(Method::POST, &path, Some(&create)).await?;
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(self.failure(&format!("create namespace {ns:?}"), status, &body))
    }

    /// The tables of `ns`, every page of them.
    pub(super) async fn list_tables(&self, ns: &NamespaceIdent) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut path = format!("{}namespaces/{}/tables", self.root, ns_segment(ns));
            if let Some(p) = &page {
                path.push_str(&format!("?pageToken={}", segment(p)));
            }
            let (status, body) = self.call(Method::GET, &path, None).await?;
            let v = self.expect_ok(&format!("list the tables of {ns:?}"), status, &body)?;
            for id in v["identifiers"].as_array().into_iter().flatten() {
                if let Some(n) = id["name"].as_str() {
                    names.push(n.to_string());
                }
            }
            match v["next-page-token"].as_str() {
                Some(t) if !t.is_empty() && page.as_deref() != Some(t) => page = Some(t.into()),
                _ => return Ok(names),
            }
        }
    }

    /// The table `ns.table`, if it exists.
    pub(super) async fn load(&self, ns: &NamespaceIdent, table: &str) -> Result<Option<Loaded>> {
        let (status, body) = self
            .call(Method::GET, &self.table_path(ns, table), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("load table {table}");
        let v = self.expect_ok(&what, status, &body)?;
        let metadata_location = v["metadata-location"]
            .as_str()
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "lake REST catalog {}: {what}: the answer has no metadata-location",
                    self.base
                ))
            })?
            .to_string();
        let metadata: TableMetadata =
            serde_json::from_value(v["metadata"].clone()).map_err(|e| {
                Error::unavailable(format!(
                    "lake REST catalog {}: {what}: its metadata cannot be read: {e}",
                    self.base
                ))
            })?;
        Ok(Some(Loaded {
            metadata_location,
            metadata,
        }))
    }

    /// Creates the table `ns.table` empty, at `md`'s location with `md`'s schema, partition
    /// spec, sort order and properties. Returns false when it already exists (another writer
    /// created it first).
    pub(super) async fn create(
        &self,
        ns: &NamespaceIdent,
        table: &str,
        md: &TableMetadata,
    ) -> Result<bool> {
        let body = json!({
            "name": table,
            "location": md.location(),
            "schema": md.current_schema(),
            "partition-spec": md.default_partition_spec(),
            "write-order": md.default_sort_order(),
            "properties": md.properties(),
            "stage-create": false,
        });
        let path = format!("{}namespaces/{}/tables", self.root, ns_segment(ns));
        let (status, resp) = self.call(Method::POST, &path, Some(&body)).await?;
        if status == StatusCode::CONFLICT {
            return Ok(false);
        }
        self.expect_ok(&format!("create table {table}"), status, &resp)?;
        Ok(true)
    }

    /// Commits `updates` to `ns.table` if the table still meets `requirements`. Returns false
    /// when it does not (409: another writer committed since); nothing was changed then.
    pub(super) async fn commit(
        &self,
        ns: &NamespaceIdent,
        table: &str,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> Result<bool> {
        let body = json!({
            "identifier": { "namespace": ns.as_ref(), "name": table },
            "requirements": requirements,
            "updates": updates,
        });
        let (status, resp) = self
            .call(Method::POST, &self.table_path(ns, table), Some(&body))
            .await?;
        if status == StatusCode::CONFLICT {
            return Ok(false);
        }
        self.expect_ok(&format!("commit to table {table}"), status, &resp)?;
        Ok(true)
    }
}

/// The message of a REST error body (`{"error": {"message": ..., "type": ...}}`), if it is one.
fn server_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    let msg = e["message"].as_str().or_else(|| v["message"].as_str())?;
    Some(match e["type"].as_str() {
        Some(t) => format!("{t}: {msg}"),
        None => msg.to_string(),
    })
}

/// The requirements of a commit built on `md`: the same table (uuid), the same current snapshot
/// of `main`, schema and partition spec as when it was built.
pub(super) fn requirements(md: &TableMetadata) -> Vec<TableRequirement> {
    vec![
        TableRequirement::UuidMatch { uuid: md.uuid() },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: "main".to_string(),
            snapshot_id: md.current_snapshot_id(),
        },
        TableRequirement::CurrentSchemaIdMatch {
            current_schema_id: md.current_schema_id(),
        },
        TableRequirement::LastAssignedFieldIdMatch {
            last_assigned_field_id: md.last_column_id(),
        },
        TableRequirement::DefaultSpecIdMatch {
            default_spec_id: md.default_partition_spec_id(),
        },
        TableRequirement::LastAssignedPartitionIdMatch {
            last_assigned_partition_id: md.last_partition_id(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("AGENTSVES"), "AGENTSVES");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        let ns = NamespaceIdent::from_strs(["a", "b"]).unwrap();
        assert_eq!(ns_segment(&ns), "a%1Fb");
    }

    #[test]
    fn server_errors_are_read_from_the_rest_error_shape() {
        let body = br#"{"error":{"message":"Requirement failed","type":"CommitFailedException","code":409}}"#;
        assert_eq!(
            server_message(body).as_deref(),
            Some("CommitFailedException: Requirement failed")
        );
        assert_eq!(server_message(b"not json"), None);
    }
}
