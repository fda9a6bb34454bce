//! The pipe spec: what a user writes (JSON file, REST body) to define a pipe.
//!
//! Field names are part of the product contract. Unknown fields are rejected
//! so that typos fail loudly; `validate` names the offending field.

use crate::types::{TableEngine, TableOptions};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A password: serialized as-is (the catalog stores it), never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipeSpec {
    pub name: String,
    pub source: SourceSpec,
    pub destination: DestinationSpec,
    pub tables: Vec<TableSpec>,
    #[serde(default)]
    pub mode: PipeMode,
    #[serde(default)]
    pub settings: SyncSettings,
    /// Where the pipe may run when several workers share the catalog; set at
    /// creation. Absent: on any worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
}

/// A pipe's placement constraint: the labels a worker must all have
/// (`sluice server --labels k=v,...`) to run it, e.g.
/// `"placement": {"labels": {"region": "eu"}}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// Label name → value; a worker runs the pipe only if its labels include every pair.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl PlacementSpec {
    /// Whether a worker with `labels` may run the pipe.
    pub fn admits(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The constraint as `k=v,k2=v2` (for messages).
    pub fn describe(&self) -> String {
        format_labels(&self.labels)
    }
}

/// Checks one worker label or placement-constraint pair: a name and a value of
/// 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-'. The error says which is wrong.
pub fn check_label(name: &str, value: &str) -> Result<(), String> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok(name) {
        return Err(format!("label name {name:?} must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-'"));
    }
    if !ok(value) {
        return Err(format!("the value {value:?} of label {name:?} must be 1-63 characters of A-Z, a-z, 0-9, '.', '_' or '-'"));
    }
    Ok(())
}

/// Parses worker labels written `k=v,k2=v2` (spaces around items ignored; empty: none).
pub fn parse_labels(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut labels = std::collections::BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("{item:?} is not of the form name=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        check_label(k, v)?;
        if labels.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("label {k:?} is given twice"));
        }
    }
    Ok(labels)
}

/// Labels as `k=v,k2=v2` (sorted by name).
pub fn format_labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub host: String,
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    pub user: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    /// Replica server id used on the binlog connection; derived from the pipe name when absent.
    #[serde(default)]
    pub server_id: Option<u32>,
    /// TLS to the source (every connection, the binlog stream included).
    #[serde(default)]
    pub tls: TlsSpec,
    /// How CDC positions its binlog stream on the source.
    #[serde(default)]
    pub replication_mechanism: ReplicationMechanism,
    /// A source table (`schema.table`) Sluice writes a row to every
    /// `settings.heartbeat_interval_ms`, so that the checkpoint (and the lag)
    /// keeps moving while the tracked tables are quiet. Created if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_table: Option<String>,
    /// Longest wait for the source to answer one request (connecting, a query,
    /// a snapshot chunk, opening the binlog stream); a source that does not
    /// answer in time is a transient error, retried on a new connection.
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// Reach the source through an SSH server (a bastion host): every source
    /// connection, the binlog stream included, is a `direct-tcpip` channel to
    /// `host:port` opened by that server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSpec>,
}

/// An SSH tunnel to the source (`source.ssh`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// The SSH server (bastion) to connect to.
    pub host: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub user: String,
    /// The client's private key, PEM or OpenSSH text (unencrypted). Set it or `password`.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub private_key: Secret,
    /// The SSH user's password. Set it or `private_key`.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    /// The server's public host key as a known_hosts / `ssh-keyscan` line
    /// (`ssh-ed25519 AAAA...`; a leading host name and a trailing comment are ignored).
    /// Without it the connection is refused with an error that prints the key the
    /// server offered, unless `insecure_skip_host_key_check` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_host_key: Option<String>,
    /// Accept any host key (open to a man in the middle; for tests only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_host_key_check: bool,
}

fn default_ssh_port() -> u16 {
    22
}

/// The key type and base64 body of a host key line (`[hosts] type base64 [comment]`), when it has that shape.
pub fn host_key_parts(line: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_type = |w: &str| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-") || w.starts_with("rsa-");
    let at = words.iter().position(|w| is_type(w))?;
    let body = *words.get(at + 1)?;
    let b64 = !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    b64.then_some((words[at], body))
}

impl SshSpec {
    /// Checks the tunnel settings (field names as `source.ssh.*`).
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.host.trim().is_empty() {
            return Err(err("source.ssh.host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(err("source.ssh.port", "must be between 1 and 65535"));
        }
        if self.user.is_empty() {
            return Err(err("source.ssh.user", "must not be empty"));
        }
        match (self.private_key.is_empty(), self.password.is_empty()) {
            (true, true) => return Err(err("source.ssh", "set private_key (PEM or OpenSSH text) or password")),
            (false, false) => return Err(err("source.ssh", "set private_key or password, not both")),
            _ => {}
        }
        if !self.private_key.is_empty() && !self.private_key.0.contains("-----BEGIN ") {
            return Err(err(
                "source.ssh.private_key",
                "must be the text of a private key (-----BEGIN OPENSSH PRIVATE KEY----- or a PEM key), not a path",
            ));
        }
        if let Some(k) = &self.known_host_key {
            if host_key_parts(k).is_none() {
                return Err(err(
                    "source.ssh.known_host_key",
                    "must be a public host key line such as \"ssh-ed25519 AAAA...\" (what ssh-keyscan prints)",
                ));
            }
        }
        Ok(())
    }
}

fn default_query_timeout_ms() -> u64 {
    60_000
}

/// How the binlog stream is positioned when CDC (re)starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationMechanism {
    /// GTIDs when the source writes them (MariaDB always; MySQL with `gtid_mode=ON`) and
    /// the checkpoint has a GTID set, else file/position.
    #[default]
    Auto,
    /// Resume from the checkpoint's GTID set: survives a fail-over to another server of
    /// the replication topology. Refused when the source has GTIDs off.
    Gtid,
    /// Resume from the checkpoint's binlog file and offset (valid on that one server only).
    FilePos,
}

/// How the connection to the source is encrypted and verified (the modes of MySQL's `--ssl-mode`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it (certificate not verified), else plain TCP.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not verified.
    Required,
    /// TLS with a certificate signed by `ca_cert`; the host name is not checked.
    VerifyCa,
    /// TLS with a certificate signed by `ca_cert` (or a public CA) for `tls_host` (or `host`).
    VerifyIdentity,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[serde(default)]
    pub mode: TlsMode,
    /// PEM of the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// The name the certificate must carry, when it differs from `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_host: Option<String>,
}

impl TlsSpec {
    /// This TLS setting given as a change of `current` (`PATCH .../source`):
    /// like the other secrets, a CA certificate (and `tls_host`) not given is
    /// kept as stored, so that changing the mode alone does not drop it; an
    /// empty string removes it.
    pub fn patched_over(self, current: &TlsSpec) -> TlsSpec {
        let keep = |given: Option<String>, stored: &Option<String>| match given {
            None => stored.clone(),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v),
        };
        TlsSpec { mode: self.mode, ca_cert: keep(self.ca_cert, &current.ca_cert), tls_host: keep(self.tls_host, &current.tls_host) }
    }
}

fn default_mysql_port() -> u16 {
    3306
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    pub url: String,
    #[serde(default = "default_ch_user")]
    pub user: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    pub database: String,
    /// Longest time, in milliseconds, ClickHouse may take to answer one step of
    /// a request: a query or DDL statement as a whole, each chunk of an insert's
    /// body and the insert's final acknowledgement (so a large insert that keeps
    /// moving is never cut). A step that takes longer is abandoned (its
    /// connection closed) and fails with a transient error, which is retried.
    /// Connecting is bounded by the smaller of this and 10 s.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// PEM of the CA (bundle) that signed the certificate of an `https://`
    /// `url`, for a server whose certificate is not signed by a public CA
    /// (the WebPKI roots are used when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// A ClickHouse cluster (a name of `system.clusters`): every statement
    /// Sluice sends runs `ON CLUSTER` it. Ignored on ClickHouse Cloud (detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `cluster` only: tables use `Replicated*MergeTree` engines
    /// (`/clickhouse/tables/{uuid}/{shard}/{database}/<table>`, `{replica}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replicated: bool,
    /// `cluster` only: each table is a local table `<table><shard_table_suffix>`
    /// on every host plus a `Distributed` table `<table>` over them. Default:
    /// true when the cluster has more than one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<bool>,
    /// `cluster` with `distributed` only: the suffix of the local (shard) tables.
    #[serde(default = "default_shard_table_suffix", skip_serializing_if = "is_default_shard_table_suffix")]
    pub shard_table_suffix: String,
    /// `cluster` with `distributed` only: insert into the local shard table of
    /// the host `url` reaches instead of the `Distributed` table (which
    /// inserts with `insert_distributed_sync = 1`). See the README's trade-off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insert_into_shards: bool,
    /// `replicated` only: `insert_quorum` of every insert (replicas that must
    /// acknowledge it); absent: ClickHouse's default (no quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_quorum: Option<u32>,
    /// `cluster` only: `distributed_ddl_task_timeout` of every `ON CLUSTER`
    /// statement, in seconds: how long ClickHouse waits for every host. A
    /// statement some hosts did not finish in time is a transient error,
    /// retried (statements are idempotent) and reported.
    #[serde(default = "default_ddl_timeout_s")]
    pub ddl_timeout_s: u64,
    /// How insert bodies are compressed on the wire: `lz4` (default;
    /// ClickHouse's native LZ4 blocks, a quarter to a half of the bytes) or
    /// `none` (for a ClickHouse on the same host or a fast local network:
    /// LZ4 is about a tenth of Sluice's CPU per copied row).
    #[serde(default, skip_serializing_if = "Compression::is_default")]
    pub compression: Compression,
}

/// Compression of insert bodies (`destination.compression`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Lz4,
    None,
}

impl Compression {
    fn is_default(&self) -> bool {
        *self == Compression::default()
    }
}

impl DestinationSpec {
    /// `request_timeout_ms` when the spec does not set it.
    pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 60_000;
    /// The accepted range of `request_timeout_ms`.
    pub const REQUEST_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
    /// `shard_table_suffix` when the spec does not set it.
    pub const DEFAULT_SHARD_TABLE_SUFFIX: &str = "_shard";
    /// `ddl_timeout_s` when the spec does not set it (ClickHouse's own default).
    pub const DEFAULT_DDL_TIMEOUT_S: u64 = 180;

    /// A destination at `url`, database `database`, every other field its default.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: default_ch_user(),
            password: Secret::default(),
            database: database.into(),
            request_timeout_ms: Self::DEFAULT_REQUEST_TIMEOUT_MS,
            ca_cert: None,
            cluster: None,
            replicated: false,
            distributed: None,
            shard_table_suffix: default_shard_table_suffix(),
            insert_into_shards: false,
            insert_quorum: None,
            ddl_timeout_s: Self::DEFAULT_DDL_TIMEOUT_S,
            compression: Compression::Lz4,
        }
    }

    /// Checks the cluster and TLS fields (the rest is checked by `PipeSpec::validate`).
    fn validate_topology(&self) -> Result<(), SpecError> {
        let needs_cluster = |field: &str, what: &str| {
            Err(err(format!("destination.{field}"), format!("{what} applies to a cluster only: set destination.cluster too")))
        };
        match &self.cluster {
            Some(c) if c.trim().is_empty() || c.contains(['`', '\'', '\\']) => {
                return Err(err("destination.cluster", "must be a cluster name of system.clusters (non-empty, no quotes or backticks)"))
            }
            Some(_) => {}
            None => {
                if self.replicated {
                    return needs_cluster("replicated", "replicated (Replicated*MergeTree engines)");
                }
                if self.distributed.is_some() {
                    return needs_cluster("distributed", "distributed (a Distributed table over shard tables)");
                }
                if self.insert_into_shards {
                    return needs_cluster("insert_into_shards", "insert_into_shards");
                }
                if self.shard_table_suffix != DestinationSpec::DEFAULT_SHARD_TABLE_SUFFIX {
                    return needs_cluster("shard_table_suffix", "shard_table_suffix");
                }
            }
        }
        if self.insert_into_shards && self.distributed == Some(false) {
            return Err(err(
                "destination.insert_into_shards",
                "needs shard tables: it cannot be combined with distributed: false (the tables are then the local ones already)",
            ));
        }
        if self.insert_quorum.is_some() && !self.replicated {
            return Err(err("destination.insert_quorum", "applies to replicated tables only: set destination.replicated too"));
        }
        let suffix = &self.shard_table_suffix;
        if suffix.is_empty() || suffix.contains('`') || suffix.ends_with("_resync") {
            return Err(err("destination.shard_table_suffix", "must be non-empty, without backticks, and not end in _resync"));
        }
        if self.ddl_timeout_s == 0 || self.ddl_timeout_s > 86_400 {
            return Err(err("destination.ddl_timeout_s", "must be between 1 and 86400 (seconds)"));
        }
        if let Some(pem) = &self.ca_cert {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(err("destination.ca_cert", "must be a PEM certificate (-----BEGIN CERTIFICATE-----)"));
            }
            if !self.url.starts_with("https://") {
                return Err(err("destination.ca_cert", "applies to an https:// url only"));
            }
        }
        Ok(())
    }
}

fn default_shard_table_suffix() -> String {
    DestinationSpec::DEFAULT_SHARD_TABLE_SUFFIX.into()
}

fn is_default_shard_table_suffix(s: &str) -> bool {
    s == DestinationSpec::DEFAULT_SHARD_TABLE_SUFFIX
}

fn default_ddl_timeout_s() -> u64 {
    DestinationSpec::DEFAULT_DDL_TIMEOUT_S
}

fn default_ch_user() -> String {
    "default".into()
}

fn default_request_timeout_ms() -> u64 {
    DestinationSpec::DEFAULT_REQUEST_TIMEOUT_MS
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// `schema.table`, or `schema.*` for every base table of a schema.
    pub source: String,
    /// Destination table name; defaults to the source table's name.
    #[serde(default)]
    pub destination: Option<String>,
    /// Column whose ranges split the snapshot into partitions (default: the
    /// first primary-key column): an indexed, NOT NULL integer,
    /// date/datetime/timestamp or CHAR/VARCHAR/BINARY/VARBINARY column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Source columns never read (snapshot) nor written (CDC), absent from the destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_columns: Vec<String>,
    /// The destination's ORDER BY columns (default: the source key); must contain every key column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorting_key: Option<Vec<String>>,
    /// `replacing` (default), `merge_tree` (append-only change log) or `null`.
    #[serde(default, skip_serializing_if = "TableEngine::is_default")]
    pub engine: TableEngine,
    /// A ClickHouse PARTITION BY expression, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// `replacing` only: create the table so that `OPTIMIZE TABLE ... FINAL CLEANUP` removes deleted rows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hard_deletes: bool,
    /// A key declared by the user for a table that has none (no primary key, no
    /// unique key on NOT NULL columns): the columns that identify a row. Only
    /// for a named table (`schema.table`); its columns must hold no NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_columns: Option<Vec<String>>,
    /// `destination.cluster` with a `Distributed` table only: the sharding key
    /// (a ClickHouse expression) of the `Distributed` table. Default:
    /// `cityHash64(<key columns>)`; a table without a key needs one when the
    /// cluster has more than one shard. For `replacing` tables it may use key
    /// columns only (every version of a row must land on the same shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding_key: Option<String>,
}

impl TableSpec {
    /// The options recorded with each of this entry's tables.
    pub fn options(&self) -> TableOptions {
        TableOptions {
            exclude_columns: self.exclude_columns.clone(),
            sorting_key: self.sorting_key.clone(),
            engine: self.engine,
            partition_by: self.partition_by.clone(),
            hard_deletes: self.hard_deletes,
            key_columns: self.key_columns.clone(),
            sharding_key: self.sharding_key.clone(),
        }
    }

    /// Checks what can be checked of this entry without the source (`i`: its
    /// index in `tables`): the source pattern, the destination name, the options.
    /// A pipe's spec checks every entry so; tables added to a live pipe too.
    pub fn validate(&self, i: usize) -> Result<(), SpecError> {
        let pattern = self.pattern().map_err(|m| err(format!("tables[{i}].source"), m))?;
        if let Some(d) = &self.destination {
            if pattern.table.is_none() {
                return Err(err(format!("tables[{i}].destination"), "cannot be set for a schema.* pattern"));
            }
            if d.is_empty() || d.ends_with("_resync") {
                return Err(err(format!("tables[{i}].destination"), "must be non-empty and must not end in _resync"));
            }
        }
        self.validate_options(i)
    }

    /// Checks the options that can be checked without the source (`i`: the entry's index).
    pub fn validate_options(&self, i: usize) -> Result<(), SpecError> {
        let f = |name: &str| format!("tables[{i}].{name}");
        let mut seen = std::collections::HashSet::new();
        for c in &self.exclude_columns {
            if c.is_empty() {
                return Err(err(f("exclude_columns"), "column names must not be empty"));
            }
            if !seen.insert(c) {
                return Err(err(f("exclude_columns"), format!("{c:?} is listed twice")));
            }
        }
        if let Some(pk) = &self.partition_key {
            if self.exclude_columns.contains(pk) {
                return Err(err(f("exclude_columns"), format!("{pk:?} is the partition_key; it cannot be excluded")));
            }
        }
        if let Some(key) = &self.sorting_key {
            if self.engine == TableEngine::Null {
                return Err(err(f("sorting_key"), "a Null engine table has no sorting key; leave sorting_key out"));
            }
            if key.is_empty() {
                return Err(err(f("sorting_key"), "must list at least one column (leave it out for the source key)"));
            }
            let mut seen = std::collections::HashSet::new();
            for c in key {
                if !seen.insert(c) {
                    return Err(err(f("sorting_key"), format!("{c:?} is listed twice")));
                }
                if self.exclude_columns.contains(c) {
                    return Err(err(f("sorting_key"), format!("{c:?} is in exclude_columns")));
                }
            }
        }
        if let Some(p) = &self.partition_by {
            if self.engine == TableEngine::Null {
                return Err(err(f("partition_by"), "a Null engine table has no partitions; leave partition_by out"));
            }
            if p.trim().is_empty() {
                return Err(err(f("partition_by"), "must be a non-empty ClickHouse expression"));
            }
        }
        if self.hard_deletes && self.engine != TableEngine::Replacing {
            return Err(err(f("hard_deletes"), "only applies to engine replacing (merge_tree keeps every change, null stores nothing)"));
        }
        if let Some(k) = &self.sharding_key {
            if k.trim().is_empty() {
                return Err(err(f("sharding_key"), "must be a non-empty ClickHouse expression (leave it out for cityHash64 of the key)"));
            }
            if self.engine == TableEngine::Null {
                return Err(err(f("sharding_key"), "a Null engine table is not sharded (it stores nothing); leave sharding_key out"));
            }
        }
        if let Some(key) = &self.key_columns {
            if self.pattern().is_ok_and(|p| p.table.is_none()) {
                return Err(err(
                    f("key_columns"),
                    "declares the key of one table: name the table (schema.table) in an entry of its own, not schema.*",
                ));
            }
            if key.is_empty() {
                return Err(err(f("key_columns"), "must list at least one column (leave it out for the source's own key)"));
            }
            let mut seen = std::collections::HashSet::new();
            for c in key {
                if c.is_empty() {
                    return Err(err(f("key_columns"), "column names must not be empty"));
                }
                if !seen.insert(c) {
                    return Err(err(f("key_columns"), format!("{c:?} is listed twice")));
                }
                if self.exclude_columns.contains(c) {
                    return Err(err(f("key_columns"), format!("{c:?} is in exclude_columns")));
                }
            }
        }
        Ok(())
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeMode {
    #[default]
    SnapshotAndCdc,
    SnapshotOnly,
    CdcOnly,
}

impl PipeMode {
    pub fn snapshots(self) -> bool {
        self != PipeMode::CdcOnly
    }
    pub fn streams(self) -> bool {
        self != PipeMode::SnapshotOnly
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Least time between two CDC inserts into one table (adaptive batching: a
    /// caught-up stream writes at once when that allows; see README).
    pub sync_interval_ms: u64,
    /// Most row changes a CDC batch collects before it is written.
    pub pull_batch_size: u64,
    /// Rows read per snapshot query (keyset page) and written per snapshot insert.
    pub snapshot_rows_per_chunk: u64,
    /// Rows per snapshot partition (a range of the table's first primary-key column).
    pub rows_per_partition: u64,
    /// Partitions of one table read at once, each on its own source connection.
    pub parallel_partitions: u32,
    /// Tables copied at once during the initial snapshot.
    pub parallel_tables: u32,
    /// How often the `source.heartbeat_table` row is written (when one is set).
    pub heartbeat_interval_ms: u64,
    /// Most source rows a verification (`sluice verify`) scans per second, so that it does not load the source.
    pub verify_rows_per_second: u64,
    /// Run a verification of every table this often (hours; 0 = never, only on request).
    pub verify_interval_hours: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            sync_interval_ms: 1000,
            pull_batch_size: 100_000,
            snapshot_rows_per_chunk: 100_000,
            rows_per_partition: 100_000,
            parallel_partitions: 4,
            parallel_tables: 1,
            heartbeat_interval_ms: 30_000,
            verify_rows_per_second: 200_000,
            verify_interval_hours: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pipe spec: {field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError { field: field.into(), message: message.into() }
}

/// A `schema.table` reference in a table spec; `table` is `None` for `schema.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePattern {
    pub schema: String,
    pub table: Option<String>,
}

impl TableSpec {
    /// Splits `source` at its first unquoted dot. Backticks quote names that contain dots.
    pub fn pattern(&self) -> Result<SourcePattern, String> {
        let parts = split_qualified(&self.source)?;
        match parts.as_slice() {
            [schema, table] if table == "*" => Ok(SourcePattern { schema: schema.clone(), table: None }),
            [schema, table] => Ok(SourcePattern { schema: schema.clone(), table: Some(table.clone()) }),
            _ => Err(format!("{:?} is not of the form schema.table or schema.*", self.source)),
        }
    }
}

fn split_qualified(s: &str) -> Result<Vec<String>, String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                parts.last_mut().unwrap().push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    if quoted {
        return Err(format!("{s:?} has an unterminated backtick"));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{s:?} has an empty name part"));
    }
    Ok(parts)
}

impl PipeSpec {
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: PipeSpec = serde_json::from_str(text).map_err(|e| err("(json)", e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field that can be checked without contacting a server.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(err("name", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"));
        }
        if self.source.host.trim().is_empty() {
            return Err(err("source.host", "must not be empty"));
        }
        if self.source.port == 0 {
            return Err(err("source.port", "must be between 1 and 65535"));
        }
        let tls = &self.source.tls;
        if tls.mode == TlsMode::VerifyCa && tls.ca_cert.is_none() {
            return Err(err("source.tls.ca_cert", "verify_ca needs the PEM of the CA that signed the server's certificate"));
        }
        if let Some(pem) = &tls.ca_cert {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(err("source.tls.ca_cert", "must be a PEM certificate (-----BEGIN CERTIFICATE-----)"));
            }
        }
        if self.source.user.is_empty() {
            return Err(err("source.user", "must not be empty"));
        }
        if let Some(h) = &self.source.heartbeat_table {
            match split_qualified(h) {
                Ok(parts) if parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p != "*") => {}
                _ => return Err(err("source.heartbeat_table", format!("{h:?} is not of the form schema.table"))),
            }
        }
        if self.source.query_timeout_ms < 1000 || self.source.query_timeout_ms > 86_400_000 {
            return Err(err("source.query_timeout_ms", "must be between 1000 and 86400000"));
        }
        if let Some(ssh) = &self.source.ssh {
            ssh.validate()?;
        }
        if self.source.server_id == Some(0) {
            return Err(err("source.server_id", "must be between 1 and 4294967295 (0 is not a valid replica id)"));
        }
        let url = self.destination.url.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(err("destination.url", "must be an http:// or https:// URL of the ClickHouse HTTP interface"));
        }
        if self.destination.database.is_empty() || self.destination.database.contains('`') {
            return Err(err("destination.database", "must be a non-empty name without backticks"));
        }
        if !DestinationSpec::REQUEST_TIMEOUT_MS_RANGE.contains(&self.destination.request_timeout_ms) {
            return Err(err(
                "destination.request_timeout_ms",
                "must be between 1000 and 3600000 (milliseconds ClickHouse may take to answer one request step)",
            ));
        }
        self.destination.validate_topology()?;
        if self.tables.is_empty() {
            return Err(err("tables", "must list at least one source table"));
        }
        if self.destination.cluster.is_none() || self.destination.distributed == Some(false) {
            if let Some(i) = self.tables.iter().position(|t| t.sharding_key.is_some()) {
                return Err(err(
                    format!("tables[{i}].sharding_key"),
                    "applies to a Distributed table only: set destination.cluster (and leave destination.distributed true)",
                ));
            }
        }
        let mut destinations = std::collections::HashSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            t.validate(i)?;
            let pattern = t.pattern().map_err(|m| err(format!("tables[{i}].source"), m))?;
            if let Some(table) = &pattern.table {
                let dest = t.destination.clone().unwrap_or_else(|| table.clone());
                if !destinations.insert(dest.clone()) {
                    return Err(err(format!("tables[{i}]"), format!("destination table {dest:?} is used twice")));
                }
            }
        }
        if let Some(p) = &self.placement {
            for (k, v) in &p.labels {
                check_label(k, v).map_err(|m| err("placement.labels", m))?;
            }
        }
        let s = &self.settings;
        if s.sync_interval_ms == 0 || s.sync_interval_ms > 3_600_000 {
            return Err(err("settings.sync_interval_ms", "must be between 1 and 3600000"));
        }
        if s.pull_batch_size == 0 || s.pull_batch_size > 10_000_000 {
            return Err(err("settings.pull_batch_size", "must be between 1 and 10000000"));
        }
        if s.snapshot_rows_per_chunk == 0 || s.snapshot_rows_per_chunk > 10_000_000 {
            return Err(err("settings.snapshot_rows_per_chunk", "must be between 1 and 10000000"));
        }
        if s.rows_per_partition == 0 || s.rows_per_partition > 1_000_000_000 {
            return Err(err("settings.rows_per_partition", "must be between 1 and 1000000000"));
        }
        if s.parallel_partitions == 0 || s.parallel_partitions > 64 {
            return Err(err("settings.parallel_partitions", "must be between 1 and 64"));
        }
        if s.parallel_tables == 0 || s.parallel_tables > 64 {
            return Err(err("settings.parallel_tables", "must be between 1 and 64"));
        }
        if s.heartbeat_interval_ms < 100 || s.heartbeat_interval_ms > 86_400_000 {
            return Err(err("settings.heartbeat_interval_ms", "must be between 100 and 86400000"));
        }
        if s.verify_rows_per_second < 1000 || s.verify_rows_per_second > 100_000_000 {
            return Err(err("settings.verify_rows_per_second", "must be between 1000 and 100000000"));
        }
        if s.verify_interval_hours > 8760 {
            return Err(err("settings.verify_interval_hours", "must be between 0 (never) and 8760 (a year)"));
        }
        Ok(())
    }

    /// Every secret of the spec (passwords, keys), for whoever stores the spec
    /// to seal them and to open them again.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        let mut out = vec![&mut self.source.password, &mut self.destination.password];
        if let Some(ssh) = &mut self.source.ssh {
            out.push(&mut ssh.private_key);
            out.push(&mut ssh.password);
        }
        out
    }

    /// `source.heartbeat_table` as (schema, table), when set (validated by `validate`).
    pub fn heartbeat_table(&self) -> Option<(String, String)> {
        let parts = split_qualified(self.source.heartbeat_table.as_deref()?).ok()?;
        match <[String; 2]>::try_from(parts) {
            Ok([schema, table]) => Some((schema, table)),
            Err(_) => None,
        }
    }

    /// The replica server id for the binlog connection: the spec's, or one derived from the name.
    pub fn server_id(&self) -> u32 {
        self.source.server_id.unwrap_or_else(|| {
            // FNV-1a of the name, folded into [100000, 2^31): stable across restarts.
            let mut h: u32 = 0x811c9dc5;
            for b in self.name.bytes() {
                h = (h ^ b as u32).wrapping_mul(0x01000193);
            }
            100_000 + h % (i32::MAX as u32 - 100_000)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"name": "shop",
       "source": {"host": "127.0.0.1", "port": 3306, "user": "repl", "password": "pw", "server_id": 51001},
       "destination": {"url": "http://127.0.0.1:8123", "user": "default", "password": "", "database": "shop"},
       "tables": [{"source": "shop.orders"}, {"source": "shop.customers", "destination": "customers_v2"}, {"source": "crm.*"}],
       "mode": "snapshot_and_cdc",
       "settings": {"sync_interval_ms": 1000, "pull_batch_size": 100000}}"#;

    #[test]
    fn parses_the_documented_example() {
        let spec = PipeSpec::from_json(EXAMPLE).unwrap();
        assert_eq!(spec.mode, PipeMode::SnapshotAndCdc);
        assert_eq!(spec.server_id(), 51001);
        assert_eq!(spec.tables[2].pattern().unwrap(), SourcePattern { schema: "crm".into(), table: None });
        assert!(!format!("{spec:?}").contains("pw"));
        assert_eq!(spec.destination.request_timeout_ms, 60_000);
    }

    #[test]
    fn a_placement_constraint_is_read_checked_and_matched() {
        let with = |p: &str| EXAMPLE.replace(r#""mode": "snapshot_and_cdc""#, &format!(r#""mode": "snapshot_and_cdc", "placement": {p}"#));
        let spec = PipeSpec::from_json(&with(r#"{"labels": {"region": "eu", "tier": "gold"}}"#)).unwrap();
        let p = spec.placement.clone().unwrap();
        assert_eq!(p.describe(), "region=eu,tier=gold");
        let labels = |t: &str| parse_labels(t).unwrap();
        assert!(p.admits(&labels("tier=gold,region=eu,zone=a")));
        assert!(!p.admits(&labels("region=eu")));
        assert!(!p.admits(&labels("region=us,tier=gold")));
        assert!(PlacementSpec::default().admits(&labels("")));
        assert!(PipeSpec::from_json(EXAMPLE).unwrap().placement.is_none());
        let again: PipeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again.placement, spec.placement);
        let e = PipeSpec::from_json(&with(r#"{"labels": {"region": ""}}"#)).unwrap_err();
        assert_eq!(e.field, "placement.labels", "{e}");
        assert!(e.message.contains("value \"\" of label \"region\""), "{e}");
        let e = PipeSpec::from_json(&with(r#"{"labels": {"re gion": "eu"}}"#)).unwrap_err();
        assert_eq!(e.field, "placement.labels", "{e}");
        let e = PipeSpec::from_json(&with(r#"{"label": {"region": "eu"}}"#)).unwrap_err();
        assert!(e.message.contains("unknown field `label`"), "{e}");
        assert!(parse_labels("region").unwrap_err().contains("not of the form name=value"));
        assert!(parse_labels("a=1,a=2").unwrap_err().contains("given twice"));
        assert_eq!(format_labels(&labels(" region = eu , zone=a ")), "region=eu,zone=a");
    }

    #[test]
    fn a_tls_change_keeps_the_stored_ca_unless_it_replaces_or_clears_it() {
        let stored = TlsSpec { mode: TlsMode::VerifyCa, ca_cert: Some("PEM".into()), tls_host: Some("db.example".into()) };
        let mode_only = TlsSpec { mode: TlsMode::VerifyIdentity, ..Default::default() };
        assert_eq!(
            mode_only.patched_over(&stored),
            TlsSpec { mode: TlsMode::VerifyIdentity, ca_cert: Some("PEM".into()), tls_host: Some("db.example".into()) }
        );
        let new_ca = TlsSpec { mode: TlsMode::VerifyCa, ca_cert: Some("NEW".into()), tls_host: Some(String::new()) };
        assert_eq!(new_ca.patched_over(&stored), TlsSpec { mode: TlsMode::VerifyCa, ca_cert: Some("NEW".into()), tls_host: None });
        let cleared = TlsSpec { mode: TlsMode::Required, ca_cert: Some(" ".into()), tls_host: None };
        assert_eq!(cleared.patched_over(&stored), TlsSpec { mode: TlsMode::Required, ca_cert: None, tls_host: Some("db.example".into()) });
    }

    #[test]
    fn request_timeout_is_read_and_kept() {
        let text = EXAMPLE.replace(r#""database": "shop""#, r#""database": "shop", "request_timeout_ms": 1000"#);
        let spec = PipeSpec::from_json(&text).unwrap();
        assert_eq!(spec.destination.request_timeout_ms, 1000);
        let again: PipeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again.destination.request_timeout_ms, 1000);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (r#""name": "shop""#, r#""name": "bad name""#, "name"),
            (r#""url": "http://127.0.0.1:8123""#, r#""url": "ftp://x""#, "destination.url"),
            (r#""sync_interval_ms": 1000"#, r#""sync_interval_ms": 0"#, "settings.sync_interval_ms"),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "orders"}"#, "tables[0].source"),
            (r#""mode": "snapshot_and_cdc""#, r#""mode": "sometimes""#, "(json)"),
            (r#""port": 3306"#, r#""port": 3306, "pasword": "x""#, "(json)"),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "exclude_columns": ["a", "a"]}"#, "tables[0].exclude_columns"),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "partition_key": "a", "exclude_columns": ["a"]}"#,
                "tables[0].exclude_columns",
            ),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "sorting_key": []}"#, "tables[0].sorting_key"),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "sorting_key": ["a"], "exclude_columns": ["a"]}"#,
                "tables[0].sorting_key",
            ),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "sorting_key": ["a"], "engine": "null"}"#,
                "tables[0].sorting_key",
            ),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "partition_by": "a", "engine": "null"}"#,
                "tables[0].partition_by",
            ),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "partition_by": " "}"#, "tables[0].partition_by"),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "hard_deletes": true, "engine": "merge_tree"}"#,
                "tables[0].hard_deletes",
            ),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "engine": "aggregating"}"#, "(json)"),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "key_columns": []}"#, "tables[0].key_columns"),
            (r#"{"source": "shop.orders"}"#, r#"{"source": "shop.orders", "key_columns": ["a", "a"]}"#, "tables[0].key_columns"),
            (r#"{"source": "crm.*"}"#, r#"{"source": "crm.*", "key_columns": ["a"]}"#, "tables[2].key_columns"),
            (
                r#"{"source": "shop.orders"}"#,
                r#"{"source": "shop.orders", "key_columns": ["a"], "exclude_columns": ["a"]}"#,
                "tables[0].key_columns",
            ),
            (r#""server_id": 51001"#, r#""server_id": 51001, "heartbeat_table": "nodot""#, "source.heartbeat_table"),
            (r#""server_id": 51001"#, r#""server_id": 51001, "heartbeat_table": "s.*""#, "source.heartbeat_table"),
            (r#""server_id": 51001"#, r#""server_id": 51001, "replication_mechanism": "binlog""#, "(json)"),
            (r#""sync_interval_ms": 1000"#, r#""sync_interval_ms": 1000, "heartbeat_interval_ms": 10"#, "settings.heartbeat_interval_ms"),
            (r#""database": "shop""#, r#""database": "shop", "request_timeout_ms": 999"#, "destination.request_timeout_ms"),
            (r#""database": "shop""#, r#""database": "shop", "request_timeout_ms": 3600001"#, "destination.request_timeout_ms"),
            (r#""database": "shop""#, r#""database": "shop", "request_timeout_ms": -1"#, "(json)"),
        ];
        for (from, to, field) in cases {
            let text = EXAMPLE.replace(from, to);
            let e = PipeSpec::from_json(&text).unwrap_err();
            assert_eq!(e.field, field, "{to}: {e}");
        }
    }

    #[test]
    fn compression_is_read_kept_and_checked() {
        let with = |v: &str| EXAMPLE.replace(r#""database": "shop""#, &format!(r#""database": "shop", "compression": {v}"#));
        let spec = PipeSpec::from_json(&with(r#""none""#)).unwrap();
        assert_eq!(spec.destination.compression, Compression::None);
        let again: PipeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
        assert_eq!(PipeSpec::from_json(EXAMPLE).unwrap().destination.compression, Compression::Lz4);
        assert!(!serde_json::to_string(&PipeSpec::from_json(EXAMPLE).unwrap()).unwrap().contains("compression"));
        let e = PipeSpec::from_json(&with(r#""zstd""#)).unwrap_err().to_string();
        assert!(e.contains("unknown variant `zstd`, expected `lz4` or `none`"), "{e}");
    }

    #[test]
    fn cluster_settings_are_read_kept_and_checked() {
        let with = |dest: &str, table: &str| {
            EXAMPLE
                .replace(r#""database": "shop""#, &format!(r#""database": "shop"{dest}"#))
                .replace(r#"{"source": "shop.orders"}"#, &format!(r#"{{"source": "shop.orders"{table}}}"#))
        };
        let ok = with(
            r#", "cluster": "c1", "replicated": true, "insert_quorum": 2, "ddl_timeout_s": 60, "shard_table_suffix": "_local""#,
            r#", "sharding_key": "cityHash64(id)""#,
        );
        let spec = PipeSpec::from_json(&ok).unwrap();
        assert_eq!(spec.destination.cluster.as_deref(), Some("c1"));
        assert!(spec.destination.replicated && spec.destination.distributed.is_none() && !spec.destination.insert_into_shards);
        assert_eq!((spec.destination.insert_quorum, spec.destination.ddl_timeout_s), (Some(2), 60));
        assert_eq!(spec.tables[0].options().sharding_key.as_deref(), Some("cityHash64(id)"));
        let again: PipeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
        // Defaults: no cluster, nothing serialized for the new fields.
        let plain = PipeSpec::from_json(EXAMPLE).unwrap();
        assert_eq!(plain.destination, DestinationSpec { user: "default".into(), ..DestinationSpec::new("http://127.0.0.1:8123", "shop") });
        let text = serde_json::to_string(&plain.destination).unwrap();
        assert!(!text.contains("cluster") && !text.contains("shard"), "{text}");

        let cases = [
            (r#", "replicated": true"#, "", "destination.replicated", "set destination.cluster"),
            (r#", "distributed": true"#, "", "destination.distributed", "set destination.cluster"),
            (r#", "insert_into_shards": true"#, "", "destination.insert_into_shards", "set destination.cluster"),
            (r#", "shard_table_suffix": "_l""#, "", "destination.shard_table_suffix", "set destination.cluster"),
            (r#", "cluster": "c1", "insert_quorum": 2"#, "", "destination.insert_quorum", "replicated"),
            (
                r#", "cluster": "c1", "insert_into_shards": true, "distributed": false"#,
                "",
                "destination.insert_into_shards",
                "distributed: false",
            ),
            (r#", "cluster": "c`1""#, "", "destination.cluster", "backticks"),
            (r#", "cluster": " ""#, "", "destination.cluster", "non-empty"),
            (r#", "cluster": "c1", "shard_table_suffix": "_resync""#, "", "destination.shard_table_suffix", "_resync"),
            (r#", "cluster": "c1", "ddl_timeout_s": 0"#, "", "destination.ddl_timeout_s", "between"),
            (r#", "ca_cert": "x""#, "", "destination.ca_cert", "PEM"),
            ("", r#", "sharding_key": "id""#, "tables[0].sharding_key", "set destination.cluster"),
            (r#", "cluster": "c1", "distributed": false"#, r#", "sharding_key": "id""#, "tables[0].sharding_key", "Distributed"),
            (r#", "cluster": "c1""#, r#", "sharding_key": " ""#, "tables[0].sharding_key", "non-empty"),
            (r#", "cluster": "c1""#, r#", "sharding_key": "id", "engine": "null""#, "tables[0].sharding_key", "Null"),
        ];
        for (dest, table, field, says) in cases {
            let e = PipeSpec::from_json(&with(dest, table)).unwrap_err();
            assert_eq!(e.field, field, "{dest} {table}: {e}");
            assert!(e.to_string().contains(says), "{dest} {table}: {e}");
        }
        let pem = "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----";
        let e = PipeSpec::from_json(&with(&format!(r#", "ca_cert": "{pem}""#), "")).unwrap_err();
        assert!(e.field == "destination.ca_cert" && e.to_string().contains("https"), "{e}");
        let https = with(&format!(r#", "ca_cert": "{pem}""#), "").replace("http://127.0.0.1:8123", "https://127.0.0.1:8443");
        assert!(PipeSpec::from_json(&https).is_ok());
    }

    #[test]
    fn ssh_settings_are_read_checked_and_kept_secret() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\n-----END OPENSSH PRIVATE KEY-----";
        let with = |ssh: &str| EXAMPLE.replace(r#""server_id": 51001}"#, &format!(r#""server_id": 51001, "ssh": {ssh}}}"#));
        let ok = with(&format!(
            r#"{{"host": "bastion", "user": "tunnel", "private_key": "{key}", "known_host_key": "bastion ssh-ed25519 AAAAC3Nz= c"}}"#
        ));
        let mut spec = PipeSpec::from_json(&ok).unwrap();
        let ssh = spec.source.ssh.clone().unwrap();
        assert_eq!((ssh.port, ssh.insecure_skip_host_key_check), (22, false));
        assert!(!format!("{spec:?}").contains("OPENSSH PRIVATE"));
        assert_eq!(spec.secrets_mut().len(), 4);
        let again: PipeSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
        assert!(!serde_json::to_string(&PipeSpec::from_json(EXAMPLE).unwrap()).unwrap().contains("ssh"));
        let cases = [
            (r#"{"host": "", "user": "u", "password": "p"}"#.to_string(), "source.ssh.host"),
            (r#"{"host": "b", "port": 0, "user": "u", "password": "p"}"#.to_string(), "source.ssh.port"),
            (r#"{"host": "b", "user": "", "password": "p"}"#.to_string(), "source.ssh.user"),
            (r#"{"host": "b", "user": "u"}"#.to_string(), "source.ssh"),
            (format!(r#"{{"host": "b", "user": "u", "password": "p", "private_key": "{key}"}}"#), "source.ssh"),
            (r#"{"host": "b", "user": "u", "private_key": "/home/u/.ssh/id_ed25519"}"#.to_string(), "source.ssh.private_key"),
            (r#"{"host": "b", "user": "u", "password": "p", "known_host_key": "AAAA"}"#.to_string(), "source.ssh.known_host_key"),
            (r#"{"host": "b", "user": "u", "password": "p", "hostkey": "x"}"#.to_string(), "(json)"),
        ];
        for (ssh, field) in cases {
            let e = PipeSpec::from_json(&with(&ssh)).unwrap_err();
            assert_eq!(e.field, field, "{ssh}: {e}");
        }
    }

    #[test]
    fn quoted_names_and_derived_server_id() {
        let t = TableSpec { source: "`my.db`.`we``ird`".into(), ..Default::default() };
        assert_eq!(t.pattern().unwrap(), SourcePattern { schema: "my.db".into(), table: Some("we`ird".into()) });
        let mut spec = PipeSpec::from_json(EXAMPLE).unwrap();
        spec.source.server_id = None;
        let id = spec.server_id();
        assert!(id >= 100_000 && id == spec.server_id());
        assert_eq!(spec.source.replication_mechanism, ReplicationMechanism::Auto);
        assert_eq!(spec.heartbeat_table(), None);
        spec.source.heartbeat_table = Some("`ops.db`.beat".into());
        assert_eq!(spec.heartbeat_table(), Some(("ops.db".into(), "beat".into())));
    }
}
