//! The destination's topology — one server, a cluster, or ClickHouse Cloud —
//! and every statement the sink sends, written for it. This is the one place
//! that knows the topology: `ClickHouseSink` asks it for statements and runs
//! them; nothing else says `ON CLUSTER` or names a shard table.
//!
//! # Layouts
//!
//! | topology | table `<t>` | where rows live | statements |
//! |---|---|---|---|
//! | [`Kind::Single`] (no `destination.cluster`) | `ReplacingMergeTree` | `<t>` | plain |
//! | [`Kind::Cloud`] (`cluster` set, ClickHouse Cloud detected) | `ReplacingMergeTree` (Cloud makes it `SharedReplacingMergeTree`) | `<t>` | plain: Cloud replicates DDL itself |
//! | [`Kind::Cluster`], `distributed: false` | `[Replicated]ReplacingMergeTree` on every host | `<t>` | `ON CLUSTER` |
//! | [`Kind::Cluster`], `distributed` | `Distributed` over `<t><suffix>` | `<t><suffix>` (`[Replicated]ReplacingMergeTree`) on every host | `ON CLUSTER` |
//!
//! A replicated table's Keeper path is `/clickhouse/tables/{uuid}/{shard}/{database}/<local name>`
//! with replica `{replica}`; `{uuid}` makes the path unique per table, so a
//! table dropped and created again (a resync's copy) never meets its old path.
//!
//! # Sharding and `FINAL`
//!
//! The `Distributed` table's sharding key decides the shard of each inserted
//! row. `FINAL` through a `Distributed` table is applied on each shard
//! separately; it collapses the versions of a row only because every version
//! of a key lands on the same shard: the default key is `cityHash64(<key
//! columns>)`, and for `replacing` tables a configured `sharding_key` may use
//! key columns only ([`sharding_key`] refuses any other). A table without a
//! key (`merge_tree`) needs an explicit `sharding_key` when the cluster has
//! more than one shard.
//!
//! # Statements and retries
//!
//! Every statement is idempotent (`IF [NOT] EXISTS`, `CREATE OR REPLACE` for
//! the `Distributed` table, mutations that delete what is already deleted), so
//! an `ON CLUSTER` statement that did not finish on every host in
//! `distributed_ddl_task_timeout` is retried as it is (see
//! `ClickHouseSink::run_ddl`). The one that is not, `EXCHANGE TABLES`, is
//! guarded by the resync marker checked on every host (see [`Topology::swap`]).

use crate::alter::alter_statements;
use crate::{escape_literal, quote};
use sluice_core::schema::AlterOp;
use sluice_core::spec::DestinationSpec;
use sluice_core::types::{TableEngine, TableMapping, IS_DELETED, SYNCED_AT, VERSION};

/// What the destination is, detected once per sink (see `ClickHouseSink::topology`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One server: plain statements (also ClickHouse Cloud when no cluster is configured).
    Single,
    /// ClickHouse Cloud: plain tables, no `ON CLUSTER` (Cloud replicates DDL itself).
    Cloud,
    /// A self-hosted cluster: `ON CLUSTER` statements.
    Cluster(Cluster),
}

/// A self-hosted cluster as the sink uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `destination.cluster`.
    pub name: String,
    /// Shards of the cluster (`system.clusters`).
    pub shards: u32,
    /// Hosts (every replica of every shard).
    pub hosts: u32,
    /// `Replicated*MergeTree` engines.
    pub replicated: bool,
    /// A `Distributed` table `<t>` over local tables `<t><suffix>`.
    pub distributed: bool,
    /// The local tables' suffix (`destination.shard_table_suffix`).
    pub suffix: String,
    /// Inserts go into the local table of the host the URL reaches.
    pub insert_into_shards: bool,
    /// `insert_quorum` of every insert.
    pub insert_quorum: Option<u32>,
    /// `distributed_ddl_task_timeout`, seconds.
    pub ddl_timeout_s: u64,
}

impl Cluster {
    /// The cluster `dest` configures, with `shards` and `hosts` as `system.clusters` counts them.
    pub fn from_spec(dest: &DestinationSpec, shards: u32, hosts: u32) -> Self {
        Cluster {
            name: dest.cluster.clone().unwrap_or_default(),
            shards,
            hosts,
            replicated: dest.replicated,
            distributed: dest.distributed.unwrap_or(shards > 1),
            suffix: dest.shard_table_suffix.clone(),
            insert_into_shards: dest.insert_into_shards,
            insert_quorum: dest.insert_quorum,
            ddl_timeout_s: dest.ddl_timeout_s,
        }
    }
}

/// The destination's topology and database: builds every statement the sink sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub database: String,
    pub kind: Kind,
}

/// An `INSERT`'s target and statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// The table written into (the `Distributed` table, or a local one).
    pub table: String,
    /// `INSERT INTO ... [SETTINGS ...] FORMAT RowBinary`.
    pub sql: String,
}

/// The statements of a re-copy's swap (see [`Topology::swap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The table that carries the resync marker after the swap (the local table).
    pub marked: String,
    /// Swaps in the copy when the destination table exists.
    pub exchange: String,
    /// Moves the copy in place when the destination table does not exist.
    pub rename: String,
    /// Run after either (idempotent): the `Distributed` table re-created over
    /// the swapped-in local table, with its columns. Empty without one.
    pub after: Vec<String>,
}

impl Topology {
    /// One server (the single-node layout) for `database`.
    pub fn single(database: &str) -> Self {
        Topology { database: database.into(), kind: Kind::Single }
    }

    /// The cluster, when statements run `ON CLUSTER`.
    pub fn cluster(&self) -> Option<&Cluster> {
        match &self.kind {
            Kind::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// `` `db`.`t` ``.
    pub fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.database), quote(table))
    }

    /// ` ON CLUSTER 'c'`, or nothing.
    pub fn on_cluster(&self) -> String {
        match self.cluster() {
            Some(c) => format!(" ON CLUSTER '{}'", escape_literal(&c.name)),
            None => String::new(),
        }
    }

    /// Whether tables are a `Distributed` table over local ones.
    pub fn distributed(&self) -> bool {
        self.cluster().is_some_and(|c| c.distributed)
    }

    /// The table that holds `table`'s rows on each host: `<t><suffix>` under a
    /// `Distributed` table, else `table` itself.
    pub fn local(&self, table: &str) -> String {
        match self.cluster() {
            Some(c) if c.distributed => format!("{table}{}", c.suffix),
            _ => table.to_string(),
        }
    }

    /// `CREATE DATABASE` (the Atomic engine, ClickHouse's default: `EXCHANGE TABLES` needs it).
    pub fn create_database(&self) -> String {
        format!("CREATE DATABASE IF NOT EXISTS {}{}", quote(&self.database), self.on_cluster())
    }

    /// The statements creating `name` (and its local table) for `mapping`,
    /// the local table with `comment` when given. Fails when the table's
    /// sharding key does not fit (see [`sharding_key`]).
    pub fn create_table(&self, mapping: &TableMapping, name: &str, comment: Option<&str>) -> Result<Vec<String>, String> {
        let local = self.local(name);
        let replicated = self.cluster().is_some_and(|c| c.replicated);
        let engine = engine_sql_for(mapping, replicated.then(|| replica_path(&local)).as_deref());
        let mut create = format!(
            "CREATE TABLE IF NOT EXISTS {}{} ({}) ENGINE = {engine}",
            self.qualified(&local),
            self.on_cluster(),
            columns_sql(mapping)
        );
        if let Some(c) = comment {
            create.push_str(&format!(" COMMENT '{}'", escape_literal(c)));
        }
        let mut out = vec![create];
        if self.distributed() {
            let mut d = format!(
                "CREATE TABLE IF NOT EXISTS {}{} {}",
                self.qualified(name),
                self.on_cluster(),
                self.distributed_body(mapping, name)?
            );
            if comment.is_some() {
                // Kept on the copy's Distributed table for the swap, which re-creates `<t>` with it.
                d.push_str(&format!(" COMMENT '{}'", escape_literal(&self.sharding_key_of(mapping)?)));
            }
            out.push(d);
        }
        Ok(out)
    }

    /// `AS <local> ENGINE = Distributed(...)`: the `Distributed` table `name`
    /// with the columns of its local table.
    fn distributed_body(&self, mapping: &TableMapping, name: &str) -> Result<String, String> {
        Ok(self.distributed_with_key(name, &self.sharding_key_of(mapping)?))
    }

    fn distributed_with_key(&self, name: &str, key: &str) -> String {
        let c = self.cluster().map(|c| c.name.as_str()).unwrap_or_default();
        format!(
            "AS {} ENGINE = Distributed('{}', '{}', '{}', {key})",
            self.qualified(&self.local(name)),
            escape_literal(c),
            escape_literal(&self.database),
            escape_literal(&self.local(name))
        )
    }

    fn sharding_key_of(&self, mapping: &TableMapping) -> Result<String, String> {
        sharding_key(mapping, self.cluster().map_or(1, |c| c.shards))
    }

    /// Drops `table` (the `Distributed` table first, then its local table).
    pub fn drop_table(&self, table: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.distributed() {
            out.push(format!("DROP TABLE IF EXISTS {}{}", self.qualified(table), self.on_cluster()));
        }
        out.push(format!("DROP TABLE IF EXISTS {}{}", self.qualified(&self.local(table)), self.on_cluster()));
        out
    }

    /// Removes every row of `table` (its local tables: a `Distributed` table holds none).
    pub fn truncate(&self, table: &str) -> String {
        format!("TRUNCATE TABLE IF EXISTS {}{}", self.qualified(&self.local(table)), self.on_cluster())
    }

    /// Follows a schema change on `table` (see `alter::alter_statements`): on
    /// its local tables, then the `Distributed` table re-created over them
    /// with their new columns.
    pub fn alter(&self, table: &str, old: &TableMapping, new: &TableMapping, ops: &[AlterOp]) -> Result<Vec<String>, String> {
        let target = format!("{}{}", self.qualified(&self.local(table)), self.on_cluster());
        let mut out = alter_statements(&target, old, new, ops);
        if self.distributed() && !out.is_empty() {
            out.push(format!(
                "CREATE OR REPLACE TABLE {}{} {}",
                self.qualified(table),
                self.on_cluster(),
                self.distributed_body(new, table)?
            ));
        }
        Ok(out)
    }

    /// Counts the rows of `table` written with `version` (through the `Distributed` table).
    pub fn count_version(&self, table: &str, version: i64) -> String {
        format!("SELECT count() FROM {} WHERE {} = {version}", self.qualified(table), quote(VERSION))
    }

    /// Deletes the rows of `table` written with `version`, synchronously, on every host.
    pub fn delete_version(&self, table: &str, version: i64) -> String {
        format!(
            "ALTER TABLE {}{} DELETE WHERE {} = {version} SETTINGS mutations_sync = 2",
            self.qualified(&self.local(table)),
            self.on_cluster(),
            quote(VERSION)
        )
    }

    /// The INSERT of `mapping`'s columns into `table`: into the `Distributed`
    /// table with `insert_distributed_sync = 1` (acknowledged once every shard
    /// has its rows), or into the local table with `insert_into_shards`;
    /// `insert_quorum` when configured.
    pub fn insert(&self, mapping: &TableMapping, table: &str) -> Insert {
        let mut cols: Vec<String> = mapping.columns.iter().map(|c| quote(&c.name)).collect();
        cols.extend([quote(SYNCED_AT), quote(IS_DELETED), quote(VERSION)]);
        let mut settings = Vec::new();
        let target = match self.cluster() {
            Some(c) if c.distributed && c.insert_into_shards => self.local(table),
            Some(c) if c.distributed => {
                settings.push("insert_distributed_sync = 1".to_string());
                table.to_string()
            }
            _ => table.to_string(),
        };
        if let Some(q) = self.cluster().filter(|c| c.replicated).and_then(|c| c.insert_quorum) {
            settings.push(format!("insert_quorum = {q}"));
        }
        let settings = if settings.is_empty() { String::new() } else { format!(" SETTINGS {}", settings.join(", ")) };
        let sql = format!("INSERT INTO {} ({}){settings} FORMAT RowBinary", self.qualified(&target), cols.join(", "));
        Insert { table: target, sql }
    }

    /// The swap of the finished copy `resync` into `table` (see `ClickHouseSink::swap_in`).
    ///
    /// Under a `Distributed` table only the local tables are exchanged: a
    /// `Distributed` table names its local table, so exchanging the two
    /// `Distributed` tables too would point `<t>` at the old rows. `<t>` is
    /// then re-created over the swapped-in local table (`CREATE OR REPLACE`,
    /// atomic on each host), with its columns, which may have changed, and
    /// the sharding key kept as the copy's `Distributed` table's comment.
    ///
    /// `ON CLUSTER` runs the exchange on each host at its own moment: until
    /// every host has run it, a read through `<t>` may see the new rows on
    /// some shards and the old on others (each host's exchange is atomic).
    pub fn swap(&self, table: &str, resync: &str, sharding_key: Option<&str>) -> Swap {
        let (lt, lr) = (self.local(table), self.local(resync));
        let mut after = Vec::new();
        if let (true, Some(key)) = (self.distributed(), sharding_key) {
            after.push(format!(
                "CREATE OR REPLACE TABLE {}{} {}",
                self.qualified(table),
                self.on_cluster(),
                self.distributed_with_key(table, key)
            ));
        }
        Swap {
            exchange: format!("EXCHANGE TABLES {} AND {}{}", self.qualified(&lt), self.qualified(&lr), self.on_cluster()),
            rename: format!("RENAME TABLE {} TO {}{}", self.qualified(&lr), self.qualified(&lt), self.on_cluster()),
            marked: lt,
            after,
        }
    }

    /// `<marked hosts>\t<hosts with the table>` for the local table `local`
    /// carrying `marker`, over every host of the cluster (one row).
    pub fn marker_census(&self, local: &str, marker: &str) -> String {
        let c = self.cluster().map(|c| c.name.as_str()).unwrap_or_default();
        format!(
            "SELECT countIf(comment = '{}'), count() FROM clusterAllReplicas('{}', system.tables) WHERE database = '{}' AND name = '{}'",
            escape_literal(marker),
            escape_literal(c),
            escape_literal(&self.database),
            escape_literal(local)
        )
    }

    /// The settings every `ON CLUSTER` statement is sent with (none without a cluster).
    pub fn ddl_settings(&self) -> Vec<(&'static str, String)> {
        match self.cluster() {
            Some(c) => vec![
                ("distributed_ddl_task_timeout", c.ddl_timeout_s.to_string()),
                ("distributed_ddl_output_mode", "throw".into()),
                // The whole per-host answer before the status line: an error
                // after the first host is an HTTP error, not a truncated body.
                ("wait_end_of_query", "1".into()),
            ],
            None => Vec::new(),
        }
    }
}

/// The replicated engine's Keeper path of the local table `local`.
fn replica_path(local: &str) -> String {
    format!("/clickhouse/tables/{{uuid}}/{{shard}}/{{database}}/{local}")
}

/// The column list of a destination table: the mapping's columns and the metadata columns.
pub fn columns_sql(mapping: &TableMapping) -> String {
    let mut cols: Vec<String> = mapping.columns.iter().map(|c| format!("{} {}", quote(&c.name), c.ch_type.sql())).collect();
    cols.push(format!("{} DateTime64(9) DEFAULT now64(9)", quote(SYNCED_AT)));
    cols.push(format!("{} UInt8 DEFAULT 0", quote(IS_DELETED)));
    cols.push(format!("{} Int64 DEFAULT 0", quote(VERSION)));
    cols.join(", ")
}

/// The `ENGINE = ...` clause's text for a mapping; with `replica_path`, the
/// `Replicated` variant of the engine with that Keeper path and `{replica}`.
pub fn engine_sql_for(mapping: &TableMapping, replica_path: Option<&str>) -> String {
    let o = &mapping.options;
    let mut key: Vec<String> = mapping.sorting_key().iter().map(|k| quote(k)).collect();
    let replica = replica_path.map(|p| format!("'{}', '{{replica}}'", escape_literal(p)));
    let engine = match (o.engine, &replica) {
        (TableEngine::Null, _) => return "Null".into(),
        (TableEngine::Replacing, None) => format!("ReplacingMergeTree({}, {})", quote(VERSION), quote(IS_DELETED)),
        (TableEngine::Replacing, Some(r)) => format!("ReplicatedReplacingMergeTree({r}, {}, {})", quote(VERSION), quote(IS_DELETED)),
        (TableEngine::MergeTree, r) => {
            key.push(quote(VERSION));
            match r {
                None => "MergeTree".into(),
                Some(r) => format!("ReplicatedMergeTree({r})"),
            }
        }
    };
    let mut s = engine;
    if let Some(p) = &o.partition_by {
        s.push_str(&format!(" PARTITION BY {p}"));
    }
    s.push_str(&format!(" ORDER BY ({})", key.join(", ")));
    let mut settings = Vec::new();
    if o.hard_deletes && o.engine == TableEngine::Replacing {
        settings.push("allow_experimental_replacing_merge_with_cleanup = 1");
    }
    if o.partition_by.is_some() {
        // DATE/DATETIME columns are Nullable (lossy dates → NULL): let the
        // partition expression use them (NULL rows get a partition of their own).
        settings.push("allow_nullable_key = 1");
    }
    if !settings.is_empty() {
        s.push_str(&format!(" SETTINGS {}", settings.join(", ")));
    }
    s
}

/// The sharding key of `mapping`'s `Distributed` table over `shards` shards:
/// the configured `sharding_key`, else `cityHash64(<key columns>)`; `rand()`
/// for a table without a key over one shard or with the `null` engine.
///
/// Refused: a `replacing` table's key that uses a column outside the key
/// columns (versions of one row could land on different shards, where
/// `FINAL` cannot collapse them), and a table without a key over more than
/// one shard without a configured key.
pub fn sharding_key(mapping: &TableMapping, shards: u32) -> Result<String, String> {
    let key = &mapping.source.primary_key;
    if let Some(k) = &mapping.options.sharding_key {
        if mapping.options.engine == TableEngine::Replacing {
            if let Some(c) = identifiers(k).into_iter().find(|c| !key.contains(c)) {
                return Err(format!(
                    "sharding_key {k:?} uses {c:?}, which is not a key column ({}): a replacing table's sharding key may use key \
                     columns only, so that every version of a row lands on the same shard and FINAL collapses them",
                    key.join(", ")
                ));
            }
        }
        return Ok(k.clone());
    }
    if !key.is_empty() {
        return Ok(format!("cityHash64({})", key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")));
    }
    if shards > 1 && mapping.options.engine != TableEngine::Null {
        return Err(format!(
            "{} has no key and the cluster has {shards} shards: set the table's sharding_key (e.g. \"rand()\", or an \
             expression of columns that identify a row)",
            mapping.source.id
        ));
    }
    Ok("rand()".into())
}

/// The column names an expression uses: identifiers not followed by `(`
/// (function names are), backquoted or bare, outside string literals.
fn identifiers(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '`' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            if c != '\'' {
                out.push(s);
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next != Some(&'(') && !["AND", "OR", "NOT", "IN", "NULL"].contains(&word.to_ascii_uppercase().as_str()) {
                out.push(word);
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every statement kind for each topology, on sample tables: `(label,
/// statement)` pairs, for the golden file (`tests/golden/statements.sql`)
/// and the check that the test bed's ClickHouse parses each one.
pub fn catalogue() -> Vec<(String, String)> {
    use sluice_core::schema::{SourceColumn, SourceTable, TableId};
    use sluice_core::types::TableOptions;
    let col = |name: &str, dt: &str, nullable: bool| SourceColumn { ordinal: 1, ..SourceColumn::new(name, dt, dt, nullable) };
    let table = |key: Vec<String>| SourceTable {
        id: TableId::new("shop", "orders"),
        columns: vec![col("id", "int", false), col("region", "int", false), col("note", "text", true)],
        primary_key: key,
        charset: None,
    };
    let keyed = TableMapping::new(table(vec!["id".into()]), "orders".into());
    let log_opts = TableOptions {
        engine: TableEngine::MergeTree,
        sharding_key: Some("rand()".into()),
        partition_by: Some("region % 4".into()),
        ..Default::default()
    };
    let log = TableMapping::with_options(table(vec![]), "orders_log".into(), log_opts);
    let mut new_cols = table(vec!["id".into()]);
    new_cols.columns[2].name = "remark".into();
    new_cols.columns.push(col("qty", "int", true));
    let altered = TableMapping::new(new_cols, "orders".into());
    let ops =
        [AlterOp::RenameColumn { from: "note".into(), to: "remark".into() }, AlterOp::AddColumn { name: "qty".into(), default: None }];

    let spec = |f: &dyn Fn(&mut DestinationSpec)| {
        let mut d = DestinationSpec::new("http://ch:8123", "shop");
        d.cluster = Some("c1".into());
        f(&mut d);
        d
    };
    let topologies = [
        ("single", Topology::single("shop")),
        ("cloud", Topology { database: "shop".into(), kind: Kind::Cloud }),
        ("cluster", Topology { database: "shop".into(), kind: Kind::Cluster(Cluster::from_spec(&spec(&|_| {}), 2, 2)) }),
        (
            "cluster_replicated_1_shard",
            Topology { database: "shop".into(), kind: Kind::Cluster(Cluster::from_spec(&spec(&|d| d.replicated = true), 1, 3)) },
        ),
        (
            "cluster_replicated_distributed",
            Topology {
                database: "shop".into(),
                kind: Kind::Cluster(Cluster::from_spec(
                    &spec(&|d| {
                        d.replicated = true;
                        d.insert_quorum = Some(2);
                    }),
                    2,
                    4,
                )),
            },
        ),
        (
            "cluster_insert_into_shards",
            Topology {
                database: "shop".into(),
                kind: Kind::Cluster(Cluster::from_spec(
                    &spec(&|d| {
                        d.replicated = true;
                        d.insert_into_shards = true;
                    }),
                    2,
                    4,
                )),
            },
        ),
    ];
    let mut out = Vec::new();
    for (label, t) in topologies {
        let mut add = |kind: &str, sql: String| out.push((format!("{label}: {kind}"), sql));
        add("create database", t.create_database());
        for (what, m) in [("keyed", &keyed), ("keyless merge_tree", &log)] {
            for sql in t.create_table(m, &m.destination, None).expect("sample tables fit") {
                add(&format!("create table ({what})"), sql);
            }
        }
        for sql in t.create_table(&keyed, "orders_resync", Some("sluice resync 7")).expect("sample tables fit") {
            add("create resync copy", sql);
        }
        for sql in t.alter("orders", &keyed, &altered, &ops).expect("sample tables fit") {
            add("alter", sql);
        }
        add("truncate", t.truncate("orders"));
        for sql in t.drop_table("orders") {
            add("drop table", sql);
        }
        add("count copy rows", t.count_version("orders", 7));
        add("discard copy rows", t.delete_version("orders", 7));
        add("insert", t.insert(&keyed, "orders").sql);
        let swap = t.swap("orders", "orders_resync", Some("cityHash64(`id`)"));
        add("swap: exchange", swap.exchange);
        add("swap: rename", swap.rename);
        for sql in swap.after {
            add("swap: distributed table", sql);
        }
        if t.cluster().is_some() {
            add("swap: marker census", t.marker_census(&t.local("orders"), "sluice resync 7"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
