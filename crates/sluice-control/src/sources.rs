//! `POST /v1/sources/tables`: connects to a source as a pipe spec's `source`
//! says (through its SSH tunnel, with its TLS) and lists its schemas and
//! tables for a table picker — columns, key, estimated rows, and what keeps a
//! table from being replicated as is. Nothing is stored; the notes come from
//! the same checks pipe creation runs (`TableOptions::keyless_refusal`,
//! `checks::generated_columns_check`, `discovery::describe`).

use crate::api::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sluice_core::spec::{DestinationSpec, SourceSpec};
use sluice_core::types::{map_column, TableOptions};
use sluice_core::{PipeMode, PipeSpec, Severity, SyncSettings, TableId, TableSpec};
use sluice_source::SourceError;
use utoipa::ToSchema;

/// Which source to list, and optionally which of its schemas.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceTablesRequest {
    /// Exactly as a pipe spec's `source` (host, port, user, password, tls, ssh...).
    pub source: SourceSpec,
    /// Only these schemas (all but the system ones when absent or empty).
    #[serde(default)]
    pub schemas: Vec<String>,
}

/// The source's schemas and their base tables (system schemas left out).
#[derive(Serialize, ToSchema)]
pub struct SourceTables {
    /// The server's `VERSION()`.
    pub server: String,
    pub schemas: Vec<SchemaTables>,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaTables {
    pub name: String,
    pub tables: Vec<SourceTableView>,
}

/// One source table as a picker shows it.
#[derive(Serialize, ToSchema)]
pub struct SourceTableView {
    pub name: String,
    pub columns: Vec<SourceColumnView>,
    /// The key Sluice uses: the primary key, else a unique key on NOT NULL columns; empty when none.
    pub key: Vec<String>,
    /// Whether the table has such a key.
    pub has_key: bool,
    /// The server's row estimate (`information_schema.TABLES.TABLE_ROWS`), not a count.
    pub rows_estimated: u64,
    /// Whether a plain entry (`{"source": "schema.table"}`) replicates it without further options.
    pub replicable: bool,
    /// What keeps it from being replicated as is, or deserves attention, with the fix.
    pub notes: Vec<TableNote>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceColumnView {
    pub name: String,
    /// `COLUMN_TYPE` as the source reports it (`int unsigned`, `varchar(64)`...).
    pub source_type: String,
    /// The ClickHouse type the column gets.
    pub clickhouse_type: String,
    /// Part of the key Sluice uses (the primary key, or the unique key standing in for it).
    pub in_key: bool,
    pub nullable: bool,
    /// A generated (virtual or stored) column.
    pub generated: bool,
}

/// A note about one table: `error` (it cannot be replicated as is) or `warning`.
#[derive(Serialize, ToSchema)]
pub struct TableNote {
    pub level: String,
    pub message: String,
    pub fix: String,
}

fn answer(code: StatusCode, error: String) -> Response {
    (code, Json(ApiError { error, state: None })).into_response()
}

/// Checks the source fields as pipe creation would (the rest of the probe spec is valid by construction).
fn validate(source: &SourceSpec) -> Result<(), String> {
    let probe = PipeSpec {
        name: "sources-probe".into(),
        source: source.clone(),
        destination: DestinationSpec::new("http://127.0.0.1:8123", "probe"),
        tables: vec![TableSpec { source: "probe.probe".into(), ..Default::default() }],
        mode: PipeMode::default(),
        settings: SyncSettings::default(),
        placement: None,
    };
    probe.validate().map_err(|e| e.to_string())
}

/// The status of a source error: the server could not be reached (network,
/// tunnel, timeout) → 502; it answered and refused (wrong password, unknown
/// user, TLS demanded but not offered) → 422.
fn status_of(e: &SourceError) -> StatusCode {
    if e.severity() == Severity::Transient {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

fn where_(s: &SourceSpec) -> String {
    let via = s.ssh.as_ref().map(|t| format!(" through SSH {}@{}:{}", t.user, t.host, t.port)).unwrap_or_default();
    format!("{}:{} as {}{via}", s.host, s.port, s.user)
}

/// List a source's schemas and tables: per table its columns (source and
/// ClickHouse type, key membership, nullability), its key, an estimated row
/// count and notes on what keeps it from being replicated as is (no key: which
/// option includes it; MariaDB 11 generated columns; an unsupported charset).
/// Nothing is stored. A source that cannot be reached → 502, one that refuses
/// the login → 422, each naming host:port and the cause; bad JSON → 400 naming the field.
#[utoipa::path(post, path = "/v1/sources/tables", request_body = SourceTablesRequest, tag = "sources",
    responses((status = 200, body = SourceTables), (status = 400, body = ApiError), (status = 422, body = ApiError), (status = 502, body = ApiError)))]
pub async fn list_tables(body: axum::body::Bytes) -> Response {
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let req: SourceTablesRequest = match serde_path_to_error::deserialize(de) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!("{path}: ") };
            return answer(StatusCode::BAD_REQUEST, format!("invalid source: {at}{}", e.inner()));
        }
    };
    if let Err(e) = validate(&req.source) {
        return answer(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    let spec = &req.source;
    let mut conn = match sluice_source::conn::connect(spec).await {
        Ok(c) => c,
        Err(e) => return answer(status_of(&e), format!("cannot connect to {}: {e}", where_(spec))),
    };
    let listed = async {
        let info = sluice_source::conn::server_info(&mut conn).await?;
        let tables =
            sluice_source::conn::bounded(spec, "listing tables", sluice_source::discovery::list_tables(&mut conn, &req.schemas)).await?;
        let mut out: Vec<SchemaTables> = Vec::new();
        // Each schema described in three queries, not three per table (a source of thousands of tables, a tunnel's round trips).
        let mut described: std::collections::HashMap<String, Result<sluice_core::SourceTable, SourceError>> = Default::default();
        for (schema, table, rows) in tables {
            let id = TableId::new(&schema, &table);
            if out.last().is_none_or(|s| s.name != schema) {
                let listing = sluice_source::discovery::describe_schema(&mut conn, &schema);
                described = sluice_source::conn::bounded(spec, "describing a schema's tables", listing).await?.into_iter().collect();
            }
            let view = match described.remove(&table).unwrap_or_else(|| Err(sluice_source::discovery::no_visible_columns(&id))) {
                Ok(t) => table_view(&info, t, rows),
                Err(SourceError::Config(msg)) => SourceTableView {
                    name: table.clone(),
                    columns: Vec::new(),
                    key: Vec::new(),
                    has_key: false,
                    rows_estimated: rows,
                    replicable: false,
                    notes: vec![TableNote {
                        level: "error".into(),
                        message: msg,
                        fix: "leave the table out, or fix it on the source (GRANT SELECT on it; a supported character set)".into(),
                    }],
                },
                Err(e) => return Err(e.in_table(&id)),
            };
            match out.last_mut() {
                Some(s) if s.name == schema => s.tables.push(view),
                _ => out.push(SchemaTables { name: schema, tables: vec![view] }),
            }
        }
        Ok::<_, SourceError>(SourceTables { server: info.version, schemas: out })
    };
    match listed.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => answer(status_of(&e), format!("the source at {} refused to list its tables: {e}", where_(spec))),
    }
}

fn table_view(info: &sluice_source::ServerInfo, t: sluice_core::SourceTable, rows: u64) -> SourceTableView {
    let mut notes = Vec::new();
    let options = TableOptions::default();
    let keyless = options.keyless_refusal(&t);
    if let Some(message) = &keyless {
        let entry = format!("{}.{}", t.id.schema, t.id.table);
        notes.push(TableNote {
            level: "error".into(),
            message: format!("{}. A whole-schema entry ({}.*) skips it.", message.trim_end_matches('.'), t.id.schema),
            fix: format!("{{\"source\": \"{entry}\", \"key_columns\": [...]}} or {{\"source\": \"{entry}\", \"engine\": \"merge_tree\"}}"),
        });
    }
    if let Some(c) = sluice_source::checks::generated_columns_check(info, &t, &[]) {
        notes.push(TableNote { level: "warning".into(), message: c.found, fix: c.fix });
    }
    let columns = t
        .columns
        .iter()
        .map(|c| {
            let in_key = t.primary_key.contains(&c.name);
            SourceColumnView {
                name: c.name.clone(),
                source_type: c.column_type.clone(),
                clickhouse_type: map_column(c, in_key).sql(),
                in_key,
                nullable: c.nullable,
                generated: c.extra.to_ascii_uppercase().contains("GENERATED"),
            }
        })
        .collect();
    SourceTableView {
        name: t.id.table.clone(),
        columns,
        has_key: !t.primary_key.is_empty(),
        key: t.primary_key.clone(),
        rows_estimated: rows,
        replicable: keyless.is_none(),
        notes,
    }
}
