//! Schema changes arriving through the binlog, followed in place.
//!
//! A DDL statement is parsed (`sluice_source::ddl`, sqlparser's MySQL dialect)
//! against the recorded definitions of the pipe's tables, at its exact place
//! in the stream: everything before it has been written with the old
//! definitions (the apply loop flushes first), everything after it is decoded
//! with the new ones. What each change does:
//!
//! - columns added, dropped, renamed or widened: the same `ALTER TABLE` on the
//!   destination (and on `<table>_resync` during a resync), new definition recorded;
//! - a table renamed: followed (the destination table keeps its name);
//! - a tracked name taken over by another table (gh-ost / pt-online-schema-change
//!   cut-over, or `DROP` + `CREATE`): the table is resynced automatically;
//! - `TRUNCATE TABLE`: the destination table is truncated too;
//! - `DROP TABLE`, or a change that cannot be followed (narrowing, primary key):
//!   that table goes to `Error` with a message recommending a resync; the other
//!   tables keep flowing.
//!
//! The definition after a statement is derived from the recorded definition
//! and the statement alone (`ddl::apply`), never from the source's present
//! catalog: a pipe that lags behind several statements (paused, catching up)
//! must record the shape each one gave the table at its moment, and decode the
//! rows between them against it. The one exception is a table replaced by
//! another one, which is re-copied from the source as it is now.
//!
//! Destination statements are idempotent (`IF [NOT] EXISTS`), and the new
//! definitions are recorded with the checkpoint just after the statement in
//! one catalog transaction, so a crash at any instant replays the statement
//! against the old definitions or not at all.

use crate::modify::copy_start;
use crate::retry::retry;
use crate::{EngineError, PipeContext};
use sluice_catalog::{TableChange, TableRecord};
use sluice_core::schema::TableId;
use sluice_core::types::TableMapping;
use sluice_core::{Checkpoint, PipeAction, PipeState, TableState};
use sluice_source::ddl::{self, SchemaChange};
use std::collections::HashMap;
use tracing::{info, warn};

/// Follows one DDL statement. Returns whether any tracked table changed (the
/// apply loop then restarts its stream with the new definitions).
pub async fn follow(ctx: &PipeContext, schema: &str, query: &str, after: &Checkpoint) -> Result<bool, EngineError> {
    let records = ctx.catalog.tables(ctx.name()).await?;
    let tracked: Vec<_> = records.iter().map(|r| r.mapping.source.clone()).collect();
    let charsets = retry(ctx, "reading table charsets", || present_table_charsets(ctx, &records, query)).await?;
    let changes = match ddl::apply(schema, query, &tracked, &|t: &TableId| charsets.get(t).cloned()) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("DDL not understood, not followed: {} — statement: {query}", e.message);
            warn!(pipe = ctx.name(), "{msg}");
            ctx.catalog.note(ctx.name(), &msg).await?;
            return Ok(false);
        }
    };
    if changes.is_empty() {
        return Ok(false);
    }
    // Working copies of the definitions, changed in statement order.
    let mut current: Vec<TableMapping> = records.iter().map(|r| r.mapping.clone()).collect();
    let mut out: HashMap<String, TableChange> = HashMap::new();
    let mut resync_started = false;
    let index = |current: &[TableMapping], id: &TableId| current.iter().position(|m| &m.source.id == id);
    for change in changes {
        match change {
            Ok(SchemaChange::Altered { table, new, ops }) => {
                let Some(i) = index(&current, &table) else { continue };
                let rec = &records[i];
                let new_mapping = match current[i].rebuilt(new, current[i].options.after_alter(&ops)) {
                    Ok(m) => m,
                    Err(msg) => {
                        entry(&mut out, rec).state = Some((TableState::Error, Some(msg)));
                        continue;
                    }
                };
                for target in write_targets(ctx, rec) {
                    retry(ctx, "changing a destination table", || async {
                        Ok(ctx.sink.alter(&target, &current[i], &new_mapping, &ops).await?)
                    })
                    .await?;
                }
                current[i] = new_mapping.clone();
                entry(&mut out, rec).mapping = Some(new_mapping);
            }
            Ok(SchemaChange::Renamed { from, to }) => {
                let Some(i) = index(&current, &from) else { continue };
                current[i].source.id = to;
                entry(&mut out, &records[i]).mapping = Some(current[i].clone());
            }
            Ok(SchemaChange::Replaced { table, by }) => {
                // The destination follows the name: look the table up by the names the
                // statement started from (gh-ost renames the old table away first).
                let original = records.iter().position(|r| r.mapping.source.id == table);
                let Some(i) = original.or_else(|| index(&current, &table)) else { continue };
                let rec = &records[i];
                let e = entry(&mut out, rec);
                let described = retry(ctx, "reading a replaced table", || async {
                    match ctx.source.describe(&table).await {
                        // Only a connection problem is retried: the table's own error is the answer.
                        Err(e) if e.severity() == sluice_core::Severity::Transient => Err(e.into()),
                        other => Ok(other),
                    }
                })
                .await?;
                match described {
                    Ok(t) if rec.mapping.options.keyless_refusal(&t).is_none() => {
                        let mapping = match rec.mapping.rebuilt(t, rec.mapping.options.clone()) {
                            Ok(m) => m,
                            Err(msg) => {
                                e.state = Some((TableState::Error, Some(msg)));
                                continue;
                            }
                        };
                        let (_, version) = retry(ctx, "reserving the copy's version", || {
                            copy_start(ctx.catalog.as_ref(), ctx.name(), ctx.source.as_ref())
                        })
                        .await?;
                        retry(ctx, "creating the resync table", || async { Ok(ctx.sink.begin_recopy(&mapping, version).await?) }).await?;
                        current[i] = mapping.clone();
                        e.mapping = Some(mapping);
                        e.state = Some((TableState::Resync, None));
                        e.recopy_version = Some(version);
                        resync_started = true;
                        info!(
                            pipe = ctx.name(),
                            "{table} now names another table ({}); resyncing it",
                            by.as_ref().map(|b| b.to_string()).unwrap_or("re-created".into())
                        );
                    }
                    Ok(_) => {
                        e.state = Some((
                            TableState::Error,
                            Some(format!("{table} was replaced by a table without a key; remove it from the pipe, or add it again with key_columns or engine merge_tree")),
                        ))
                    }
                    Err(err) => {
                        e.state =
                            Some((TableState::Error, Some(format!("{table} was replaced and cannot be read: {err}; resync the table"))))
                    }
                }
            }
            Ok(SchemaChange::Truncated { table }) => {
                let Some(i) = index(&current, &table) else { continue };
                for target in write_targets(ctx, &records[i]) {
                    retry(ctx, "truncating a destination table", || async { Ok(ctx.sink.truncate(&target).await?) }).await?;
                }
                entry(&mut out, &records[i]);
            }
            Ok(SchemaChange::Dropped { table }) => {
                let Some(i) = index(&current, &table) else { continue };
                let msg = format!(
                    "source table {table} was dropped; its destination table is kept. Remove it from the pipe, or re-create it (it is then resynced)"
                );
                entry(&mut out, &records[i]).state = Some((TableState::Error, Some(msg)));
            }
            Err(inc) => {
                let Some(i) = index(&current, &inc.table) else { continue };
                entry(&mut out, &records[i]).state = Some((TableState::Error, Some(inc.reason.clone())));
            }
        }
    }
    if out.is_empty() {
        return Ok(false);
    }
    let mut changes: Vec<TableChange> = out.into_values().collect();
    changes.sort_by(|a, b| a.destination.cmp(&b.destination));
    let note = schema_note(&changes, query);
    for c in &changes {
        if let Some((TableState::Error, Some(msg))) = &c.state {
            warn!(pipe = ctx.name(), "table {}: {msg}", c.destination);
        }
    }
    crate::failpoint!("schema-after-alter-before-record");
    ctx.catalog.record_schema_change(ctx.name(), &changes, after, &note).await?;
    info!(pipe = ctx.name(), "{note}");
    if resync_started {
        let state = ctx.catalog.pipe(ctx.name()).await?.map(|p| p.state);
        if state == Some(PipeState::Running) {
            ctx.transition(
                PipeAction::Resync,
                PipeState::Resync,
                "a table was replaced on the source (online schema change); resyncing it",
            )
            .await?;
        }
    }
    Ok(true)
}

/// The history entry for a DDL statement: per table, whether it was followed,
/// is being resynced, or stopped the table (with the reason) — never
/// "followed" for a change that was not.
fn schema_note(changes: &[TableChange], query: &str) -> String {
    let mut followed = Vec::new();
    let mut other = Vec::new();
    for c in changes {
        match &c.state {
            Some((TableState::Error, msg)) => {
                other.push(format!("{}: NOT followed, table stopped: {}", c.destination, msg.as_deref().unwrap_or("unknown reason")))
            }
            Some((TableState::Resync, _)) => other.push(format!("{}: replaced on the source, resyncing it", c.destination)),
            _ => followed.push(c.destination.clone()),
        }
    }
    let mut parts = Vec::new();
    if !followed.is_empty() {
        parts.push(format!("schema change followed ({})", followed.join(", ")));
    }
    parts.extend(other);
    format!("{}: {query}", parts.join("; "))
}

fn entry<'a>(out: &'a mut HashMap<String, TableChange>, rec: &TableRecord) -> &'a mut TableChange {
    let dest = rec.mapping.destination.clone();
    out.entry(dest.clone()).or_insert(TableChange { destination: dest, mapping: None, state: None, recopy_version: None })
}

/// The destination tables the stream writes for a table: `<table>_resync` during a resync.
pub fn write_targets(ctx: &PipeContext, rec: &TableRecord) -> Vec<String> {
    let dest = &rec.mapping.destination;
    match rec.state {
        TableState::Resync | TableState::Swapping => vec![dest.clone(), ctx.sink.recopy_table(dest)],
        _ => vec![dest.clone()],
    }
}

/// The source's present default charset of the tables whose recorded one is
/// unknown: definitions recorded before table charsets were kept, tables
/// whose default was set to the database's (`CHARACTER SET DEFAULT`), and the
/// tables `query` names when it may do that now.
async fn present_table_charsets(ctx: &PipeContext, records: &[TableRecord], query: &str) -> Result<HashMap<TableId, String>, EngineError> {
    let q = query.to_ascii_uppercase();
    let sets_default = q.contains("DEFAULT") && ["CHARSET", "CHARACTER", "COLLATE"].iter().any(|w| q.contains(w));
    let named = |r: &TableRecord| sets_default && query.contains(r.mapping.source.id.table.as_str());
    let mut out = HashMap::new();
    for r in records.iter().filter(|r| r.mapping.source.charset.is_none() || named(r)) {
        let id = &r.mapping.source.id;
        if let Some(cs) = ctx.source.table_charset(id).await? {
            out.insert(id.clone(), cs);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(dest: &str, state: Option<(TableState, Option<String>)>) -> TableChange {
        TableChange { destination: dest.into(), mapping: None, state, recopy_version: None }
    }

    #[test]
    fn the_history_never_calls_an_unfollowed_change_followed() {
        let err = Some((TableState::Error, Some("narrowing product_id to SMALLINT cannot be followed; resync the table".into())));
        let note = schema_note(&[change("orders", err)], "ALTER TABLE orders MODIFY product_id SMALLINT");
        assert!(!note.contains("followed (") && note.contains("orders: NOT followed") && note.contains("resync the table"), "{note}");
        let note = schema_note(&[change("a", None), change("b", Some((TableState::Resync, None)))], "RENAME TABLE ...");
        assert!(note.starts_with("schema change followed (a); b: replaced on the source, resyncing it: RENAME"), "{note}");
    }
}
