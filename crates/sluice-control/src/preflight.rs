//! Pre-flight checks of a pipe spec before anything is stored: the source is
//! reachable with these credentials (through the SSH tunnel when there is one)
//! and configured for CDC, its tables can be replicated, and the destination
//! answers. Used by `sluice check`, `POST /v1/checks` and pipe creation.

use serde::Serialize;
use sluice_core::PipeSpec;
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
    let sink = sluice_sink::ClickHouseSink::new(&spec.destination);
    checks.push(match sink.query_tsv("SELECT version()").await {
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
    Preflight { ok: checks.iter().all(|c| c.ok), source: version, checks }
}
