//! Setup work for a live pipe whose tables change: tables added (Setup for just
//! those tables) and tables resynced (fresh `<table>_resync` copies). The
//! control plane calls these while the pipe's engine is stopped, records the
//! result in the catalog, and restarts the engine, which copies the tables
//! alongside CDC (see `cdc`).

use crate::EngineError;
use sluice_catalog::CatalogStore;
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeSpec, TableSpec};
use sluice_sink::Destination;
use sluice_source::{ChangeSource, MySqlSource, SourceError};

/// The tables a list of entries names, ready to be set up.
pub struct DescribedTables {
    pub mappings: Vec<TableMapping>,
    /// One message per table a `schema.*` entry matched but that was left out
    /// (no key, and an engine that needs one), naming the options that include it.
    pub skipped: Vec<String>,
}

/// Expands table patterns and records each table's definition. A table needs a
/// key (its primary key, a unique key on NOT NULL columns, or declared
/// `key_columns`) unless its engine needs none (`merge_tree`, `null`); one
/// without is refused when named, and skipped when a `schema.*` entry matched
/// it: a wildcard never fails the pipe because of one table.
pub async fn describe_tables(source: &dyn ChangeSource, specs: &[TableSpec]) -> Result<DescribedTables, EngineError> {
    let mut out = DescribedTables { mappings: Vec::new(), skipped: Vec::new() };
    for d in source.describe_tables(specs).await? {
        let (id, spec, table) = (d.table.id.clone(), &specs[d.index], d.table);
        if let Some(why) = spec.options().keyless_refusal(&table) {
            if d.named {
                return Err(SourceError::Config(why).into());
            }
            let msg = format!("table {id} skipped (matched by {:?} in tables[{}]): {why}", spec.source, d.index);
            tracing::warn!("{msg}");
            out.skipped.push(msg);
            continue;
        }
        let unknown = spec.options().unknown_excluded(&table);
        if !unknown.is_empty() && d.named {
            tracing::warn!(
                "tables[{}].exclude_columns: {id} has no column {} (yet); it is excluded if it is added later",
                d.index,
                unknown.join(", ")
            );
        }
        let mut m = TableMapping::with_options(table, d.destination, spec.options());
        m.partition_key = spec.partition_key.clone();
        out.mappings.push(m);
    }
    Ok(out)
}

/// The source's current position, and the version a copy consistent from it
/// writes, reserved from the pipe's clock: below every version of a stream
/// started after this call.
pub async fn copy_start(catalog: &dyn CatalogStore, pipe: &str, source: &dyn ChangeSource) -> Result<(Checkpoint, i64), EngineError> {
    let position = source.position().await?;
    let version = crate::versions::reserve(catalog, pipe, source, 1).await?;
    Ok((position, version))
}

/// Tables to add to a live pipe, ready to be recorded: their definitions, their
/// destination tables created, and the version their copy writes.
pub struct AddedTables {
    pub mappings: Vec<TableMapping>,
    pub snapshot_version: i64,
    /// The destination tables this call created (they did not exist before):
    /// the ones to drop if the addition is not recorded after all.
    pub created: Vec<String>,
}

/// Setup for tables added to a live pipe. Refuses a table (or destination name)
/// the pipe already has. The copy's version is reserved here; the caller then
/// restarts CDC (from its checkpoint) with the tables tracked, and only then
/// are they copied. A change before that restart is in what the copy reads; a
/// change after it is applied by CDC with a higher version.
pub async fn prepare_added_tables(
    catalog: &dyn CatalogStore,
    spec: &PipeSpec,
    existing: &[TableMapping],
    add: &[TableSpec],
    sink: &dyn Destination,
) -> Result<AddedTables, EngineError> {
    add_tables_setup(catalog, spec, &MySqlSource::new(spec), existing, add, sink).await
}

/// `prepare_added_tables` over any source.
pub async fn add_tables_setup(
    catalog: &dyn CatalogStore,
    spec: &PipeSpec,
    source: &dyn ChangeSource,
    existing: &[TableMapping],
    add: &[TableSpec],
    sink: &dyn Destination,
) -> Result<AddedTables, EngineError> {
    let DescribedTables { mappings, skipped } = describe_tables(source, add).await?;
    if mappings.is_empty() {
        // Nothing would be added: say why instead of recording an empty addition.
        return Err(EngineError::Spec(if skipped.is_empty() {
            "no table to add".to_string()
        } else {
            format!("no table to add: {}", skipped.join("; "))
        }));
    }
    for msg in &skipped {
        catalog.note(&spec.name, msg).await?;
    }
    for m in &mappings {
        if let Some(e) = existing.iter().find(|e| e.source.id == m.source.id || e.destination == m.destination) {
            return Err(EngineError::Spec(format!(
                "table {} (destination {:?}) is already in the pipe as {} → {:?}",
                m.source.id, m.destination, e.source.id, e.destination
            )));
        }
    }
    sink.ensure_database().await?;
    // Destination tables are created all or none (see `create_new_table`).
    let mut created = Vec::new();
    for m in &mappings {
        create_new_table(sink, m, &mut created).await?;
    }
    let (_, snapshot_version) = match copy_start(catalog, &spec.name, source).await {
        Ok(v) => v,
        Err(e) => {
            drop_created(sink, &created, &e).await;
            return Err(e);
        }
    };
    Ok(AddedTables { mappings, snapshot_version, created })
}

/// Creates `m`'s destination table, noting it in `created` when it did not
/// exist. When ClickHouse refuses it (e.g. an invalid `partition_by`), drops
/// the tables `created` lists before returning the error, so that adding the
/// tables again (with other options) does not find one created with the old
/// options (`CREATE TABLE IF NOT EXISTS` would keep it).
async fn create_new_table(sink: &dyn Destination, m: &TableMapping, created: &mut Vec<String>) -> Result<(), EngineError> {
    let result = match sink.table_exists(&m.destination).await {
        Ok(existed) => sink.create_table(m).await.map(|()| existed),
        Err(e) => Err(e),
    };
    match result {
        Ok(existed) => {
            if !existed {
                created.push(m.destination.clone());
            }
            Ok(())
        }
        Err(e) => {
            let e = EngineError::from(e);
            drop_created(sink, created, &e).await;
            Err(e)
        }
    }
}

/// Drops the destination tables an addition that failed with `why` created
/// (they did not exist before it), so that adding the tables again — with
/// other options — starts from nothing. A failure to drop is logged.
pub async fn drop_created(sink: &dyn Destination, created: &[String], why: &(dyn std::fmt::Display + Sync)) {
    for d in created {
        match sink.drop_table(d).await {
            Ok(()) => tracing::info!("dropped {d}, created for an addition of tables that failed ({why})"),
            Err(e) => tracing::warn!("adding tables failed ({why}); dropping {d}, created for it, failed too: {e}"),
        }
    }
}

/// A resync ready to be recorded: the tables' current definitions, and the
/// position the new copies are consistent from (where a whole-pipe resync restarts CDC).
pub struct Resync {
    pub mappings: Vec<TableMapping>,
    pub start: Checkpoint,
    pub snapshot_version: i64,
}

/// Reads each table's definition again from the source (a resync is also the
/// way out of a schema change that could not be followed), creates a fresh
/// `<table>_resync` for it, and reads the copies' start position.
pub async fn prepare_resync(
    catalog: &dyn CatalogStore,
    spec: &PipeSpec,
    tables: &[TableMapping],
    sink: &dyn Destination,
) -> Result<Resync, EngineError> {
    resync_setup(catalog, spec, &MySqlSource::new(spec), tables, sink).await
}

/// `prepare_resync` over any source.
pub async fn resync_setup(
    catalog: &dyn CatalogStore,
    spec: &PipeSpec,
    source: &dyn ChangeSource,
    tables: &[TableMapping],
    sink: &dyn Destination,
) -> Result<Resync, EngineError> {
    let mut mappings = Vec::with_capacity(tables.len());
    for t in tables {
        let id = &t.source.id;
        let table = source
            .describe(id)
            .await
            .map_err(|e| EngineError::Spec(format!("cannot read source table {id} ({e}); if it is gone, remove it from the pipe")))?;
        if let Some(why) = t.options.keyless_refusal(&table) {
            return Err(EngineError::Spec(format!("source table {id} has no key any more ({why}); or remove the table from the pipe")));
        }
        let m = t.rebuilt(table, t.options.clone()).map_err(EngineError::Spec)?;
        mappings.push(m);
    }
    let (start, snapshot_version) = copy_start(catalog, &spec.name, source).await?;
    sink.ensure_database().await?;
    for m in &mappings {
        sink.begin_recopy(m, snapshot_version).await?;
    }
    Ok(Resync { mappings, start, snapshot_version })
}
