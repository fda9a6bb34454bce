//! Pre-flight checks of a pipe spec before anything is stored: the source is
//! reachable with these credentials (through the SSH tunnel when there is one)
//! and configured for CDC, its tables can be replicated, and the destination
//! answers; for a `destination.cluster`, that the cluster fits (see
//! [`cluster_checks`]). Used by `sluice check`, `POST /v1/checks` and pipe creation.

use serde::Serialize;
use sluice_core::types::{TableEngine, TableMapping};
use sluice_core::PipeSpec;
use sluice_sink::{escape_literal, ClickHouseSink};
use sluice_source::checks::Check;

/// The outcome of the checks of one spec.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preflight {
    /// No check failed (warnings allowed).
    pub ok: bool,
    /// The source server's version, when it could be reached.
    pub source: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<Check>,
}

impl Preflight {
    /// One line per failed check: `name: found — fix: ...`.
    pub fn failures(&self) -> String {
        self.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {} — fix: {}", c.name, c.found, c.fix)).collect::<Vec<_>>().join("; ")
    }
}

fn failed(name: &str, found: String, fix: &str) -> Check {
    Check { name: name.into(), ok: false, warning: false, found, fix: fix.into() }
}

/// Runs every check; never fails itself: an unreachable server is a failed check saying why.
pub async fn run(spec: &PipeSpec) -> Preflight {
    let mut checks: Vec<Check> = sluice_source::checks::ssh_tunnel(&spec.source).into_iter().collect();
    let mut version = None;
    // The mappings of the spec's tables, for the cluster's checks (only with a cluster).
    let mut mappings: Vec<TableMapping> = Vec::new();
    match sluice_source::conn::connect(&spec.source).await {
        Err(e) => checks.push(failed(
            "source_connection",
            format!("cannot connect to {}:{} as {}: {e}", spec.source.host, spec.source.port, spec.source.user),
            "check source.host, port, user and password (and source.ssh / source.tls), and that the server accepts this client",
        )),
        Ok(mut conn) => {
            let source = async {
                let info = sluice_source::conn::server_info(&mut conn).await?;
                let mut out = sluice_source::checks::run(&mut conn, &info, spec.source.replication_mechanism).await?;
                out.extend(sluice_source::checks::tables(&mut conn, &info, &spec.tables).await?);
                if spec.destination.cluster.is_some() {
                    if let Ok(expanded) = sluice_source::discovery::expand(&mut conn, &spec.tables).await {
                        for e in expanded {
                            if let Ok(t) = sluice_source::discovery::describe(&mut conn, &e.id).await {
                                mappings.push(TableMapping::with_options(t, e.destination, spec.tables[e.index].options()));
                            }
                        }
                    }
                }
                Ok::<_, sluice_source::SourceError>((info.version, out))
            };
            match source.await {
                Ok((v, out)) => {
                    version = Some(v);
                    checks.extend(out);
                }
                Err(e) => checks.push(failed(
                    "source_queries",
                    format!("the source refused a check query: {e}"),
                    "grant the privileges the README lists for the source user",
                )),
            }
        }
    }
    let sink = ClickHouseSink::new(&spec.destination);
    let reachable = sink.query_tsv("SELECT version()").await;
    let cluster = reachable.is_ok() && spec.destination.cluster.is_some();
    checks.push(match reachable {
        Ok(v) => Check {
            name: "destination_connection".into(),
            ok: true,
            warning: false,
            found: format!("ClickHouse {} at {}", v.trim(), spec.destination.url),
            fix: String::new(),
        },
        Err(e) => failed(
            "destination_connection",
            format!("cannot query ClickHouse at {}: {e}", spec.destination.url),
            "check destination.url, user and password, and that the ClickHouse HTTP interface is reachable from here",
        ),
    });
    if cluster {
        checks.extend(cluster_checks(spec, &sink, &mappings).await);
    }
    Preflight { ok: checks.iter().all(|c| c.ok), source: version, checks }
}

fn passed(name: &str, found: String) -> Check {
    Check { name: name.into(), ok: true, warning: false, found, fix: String::new() }
}

fn warning(name: &str, found: String, fix: &str) -> Check {
    Check { name: name.into(), ok: true, warning: true, found, fix: fix.into() }
}

/// The checks of a `destination.cluster`: ClickHouse Cloud (where the cluster
/// settings are ignored); else the cluster exists, every host answers, the
/// `{shard}`/`{replica}` macros are defined on every host (replicated), the
/// user may run `ON CLUSTER` DDL (by creating the destination database
/// `ON CLUSTER` when missing — what the pipe does first anyway), the database
/// is Atomic (`EXCHANGE TABLES`), and each table's sharding key fits.
pub async fn cluster_checks(spec: &PipeSpec, sink: &ClickHouseSink, mappings: &[TableMapping]) -> Vec<Check> {
    let dest = &spec.destination;
    let name = dest.cluster.clone().unwrap_or_default();
    let lit = escape_literal(&name);
    let mut out = Vec::new();
    match sink.is_cloud().await {
        Ok(true) => {
            out.push(warning(
                "destination_cluster",
                format!("the destination is ClickHouse Cloud: destination.cluster {name:?} is ignored (plain tables, no ON CLUSTER)"),
                "leave destination.cluster (and replicated, distributed...) out for ClickHouse Cloud",
            ));
            return out;
        }
        Ok(false) => {}
        Err(e) => {
            out.push(failed(
                "destination_cluster",
                format!("cannot tell whether the destination is ClickHouse Cloud: {e}"),
                "check the user may read system.settings",
            ));
            return out;
        }
    }
    let (shards, hosts) = match sink.cluster_size(&name).await {
        Ok((_, 0)) => {
            out.push(failed(
                "destination_cluster",
                format!("cluster {name:?} is not in system.clusters of the server at {}", dest.url),
                "set destination.cluster to a cluster of the server's remote_servers configuration (SELECT DISTINCT cluster FROM system.clusters)",
            ));
            return out;
        }
        Ok(v) => v,
        Err(e) => {
            out.push(failed("destination_cluster", format!("cannot read system.clusters: {e}"), "check the user may read system.clusters"));
            return out;
        }
    };
    let distributed = dest.distributed.unwrap_or(shards > 1);
    out.push(passed(
        "destination_cluster",
        format!(
            "cluster {name:?}: {shards} shard(s), {hosts} host(s); tables: {}{}",
            if dest.replicated { "Replicated" } else { "" },
            if distributed {
                format!("ReplacingMergeTree <t>{} and Distributed <t>", dest.shard_table_suffix)
            } else {
                "ReplacingMergeTree <t>".into()
            }
        ),
    ));
    out.push(match sink.query_tsv(&format!("SELECT count() FROM clusterAllReplicas('{lit}', system.one)")).await {
        Ok(n) if n.trim() == hosts.to_string() => passed("destination_cluster_hosts", format!("all {hosts} host(s) of {name:?} answer")),
        Ok(n) => failed(
            "destination_cluster_hosts",
            format!("{} of {hosts} host(s) of {name:?} answered", n.trim()),
            "start the missing hosts or fix the cluster's remote_servers configuration",
        ),
        Err(e) => failed(
            "destination_cluster_hosts",
            format!("not every host of {name:?} answers: {e}"),
            "start the missing hosts, or fix the cluster's remote_servers configuration (host names, ports, the inter-server user)",
        ),
    });
    if dest.replicated {
        let sql = format!(
            "SELECT count() FROM (SELECT hostName() AS h FROM clusterAllReplicas('{lit}', system.macros) WHERE macro IN ('shard', 'replica')              GROUP BY h HAVING count() = 2)"
        );
        out.push(match sink.query_tsv(&sql).await {
            Ok(n) if n.trim() == hosts.to_string() => {
                passed("destination_macros", format!("{{shard}} and {{replica}} are defined on all {hosts} host(s)"))
            }
            Ok(n) => failed(
                "destination_macros",
                format!("{{shard}} and {{replica}} are defined on {} of {hosts} host(s)", n.trim()),
                "define <macros><shard>...</shard><replica>...</replica></macros> in every host's configuration",
            ),
            Err(e) => failed(
                "destination_macros",
                format!("cannot read the hosts' macros: {e}"),
                "check every host answers and the user may read system.macros",
            ),
        });
    }
    out.push(match sink.ensure_database().await {
        Ok(()) => passed("destination_on_cluster_ddl", format!("CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {name:?} ran on every host", dest.database)),
        Err(e) => failed(
            "destination_on_cluster_ddl",
            format!("the user cannot run ON CLUSTER DDL on {name:?}: {e}"),
            "GRANT CREATE, DROP, ALTER, TRUNCATE, INSERT, SELECT ON <database>.* and CLUSTER ON *.* to the user; check Keeper and distributed_ddl are configured",
        ),
    });
    let sql = format!("SELECT engine FROM system.databases WHERE name = '{}'", escape_literal(&dest.database));
    if let Ok(engine) = sink.query_tsv(&sql).await {
        let engine = engine.trim();
        if !engine.is_empty() && !["Atomic", "Replicated", "Shared"].contains(&engine) {
            out.push(failed(
                "destination_database_engine",
                format!("database {} uses the {engine} engine; a resync's swap (EXCHANGE TABLES) needs Atomic", dest.database),
                "use a database with the Atomic engine (ClickHouse's default)",
            ));
        }
    }
    if distributed {
        for m in mappings {
            let name = format!("table {} sharding", m.source.id);
            out.push(match sluice_sink::topology::sharding_key(m, shards) {
                Err(e) => failed(&name, e, "set the table's sharding_key to an expression of its key columns (or rand() for a table without a key)"),
                Ok(key) if dest.insert_into_shards && shards > 1 && m.options.engine == TableEngine::Replacing => warning(
                    &name,
                    format!("sharding key {key} is not used: insert_into_shards writes every row into the shard of the host destination.url reaches"),
                    "keep destination.url on one host (or on replicas of one shard): versions of a row written through different shards cannot be collapsed by FINAL",
                ),
                Ok(key) => passed(&name, format!("sharding key {key}")),
            });
        }
    }
    out
}
