//! Works out what one DDL statement from the binlog does to the tracked tables.
//!
//! [`apply`] takes the text of a query event and the recorded definitions of
//! the tracked tables (their default charsets included), and returns one
//! [`SchemaChange`] per effect on a tracked table, or an [`Incompatible`] when
//! the change cannot be followed in place (the caller then resyncs the table).
//! Pure: no I/O, no server. The definition after a statement is derived from
//! the recorded one and the statement alone, never from the server's present
//! catalog: a pipe that lags behind several statements must record the shape
//! each statement gave the table at its moment.
//!
//! New column definitions are built in the conventions `information_schema.COLUMNS`
//! uses on MySQL 8/9 (see `sluice_core::schema::SourceColumn`), so that
//! `TableMapping::new` maps a column added by DDL exactly as it maps a discovered
//! one. (MariaDB reports integer display widths, `int(11)`, and JSON as
//! `longtext`; neither changes the ClickHouse type.)
//!
//! # How a statement is read
//!
//! 1. It is tokenized with sqlparser's MySQL dialect (comments, backticks and
//!    string literals handled by the tokenizer).
//! 2. Only `ALTER [ONLINE|IGNORE] TABLE`, `RENAME TABLE`, `TRUNCATE`,
//!    `DROP TABLE` and `CREATE [OR REPLACE] TABLE` can concern a tracked table;
//!    every other statement (`CREATE USER`, `GRANT`, `CREATE DATABASE`,
//!    `ANALYZE`, DML, `TEMPORARY` tables...) yields `Ok(vec![])` without being
//!    parsed. So does a table statement none of whose identifiers is the name of
//!    a tracked table (gh-ost/pt-osc shadow tables such as `_t_gho`, `_t_new`).
//! 3. `ALTER TABLE` clauses that cannot change the columns or the primary key
//!    (indexes, foreign keys, checks, table options such as `ENGINE=`,
//!    `ALGORITHM=`, `LOCK=`, partitioning, `ALTER COLUMN .. SET DEFAULT`) are
//!    removed before parsing, because sqlparser does not know most of them
//!    (a change of the table's default `CHARACTER SET`/`COLLATE` among them is
//!    kept aside: it is recorded, and text columns added after it inherit it;
//!    `CHARACTER SET DEFAULT`, the database's, is recorded as unknown, and the
//!    table's charset is then asked of the source when a column needs it);
//!    MariaDB's `IF [NOT] EXISTS` on `ADD`/`CHANGE`/`MODIFY` COLUMN, `CHARSET`
//!    and `RENAME new_name` (without `TO`) are rewritten into what it knows.
//!    Clauses that change rows without row events (`CONVERT TO CHARACTER SET`,
//!    `DROP`/`TRUNCATE`/`EXCHANGE PARTITION`, `IMPORT TABLESPACE`) make the
//!    table [`Incompatible`].
//! 4. The rest is parsed by sqlparser; what it rejects is a [`DdlError`]
//!    carrying the parser's message — nothing is guessed. MariaDB's column
//!    attribute `COMPRESSED[=zlib]` (storage only: values and types are those
//!    of the plain column) is removed first; MariaDB's `UUID`, `INET4`, `INET6`
//!    and `VECTOR(n)` are column types like any other.
//!
//! Table names are matched exactly (MySQL's default `lower_case_table_names=0`),
//! column names case-insensitively (as MySQL does).

use sluice_core::schema::{SourceColumn, SourceTable, TableId};
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, CreateTable, DataType, EnumMember, ExactNumberInfo, Expr, GeneratedExpressionMode,
    MySQLColumnPosition, ObjectName, ObjectType, RenameTableNameKind, Statement, TableConstraint, UnaryOperator, Value,
};
use sqlparser::ast::{BinaryLength, CharacterLength};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::fmt;

pub use sluice_core::schema::AlterOp;

/// One schema change a DDL statement makes to a tracked table.
///
/// The changes of one statement come in the order the caller should apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// The table's shape changed; `new` is the recorded definition after the
    /// statement (`new.id == table`; a rename in the same statement follows as
    /// its own `Renamed`). `ops` are the column steps, for the sink.
    Altered {
        table: TableId,
        new: SourceTable,
        ops: Vec<AlterOp>,
    },
    /// The tracked table named `from` is now named `to` (same table, same rows).
    Renamed {
        from: TableId,
        to: TableId,
    },
    /// The tracked *name* `table` now refers to a different table whose rows and
    /// definition Sluice has not recorded: `by` is the name it had before it was
    /// renamed onto `table` (e.g. `_t_gho` in a gh-ost cut-over
    /// `RENAME TABLE t TO _t_del, _t_gho TO t`, which yields
    /// `Renamed { t → _t_del }` then `Replaced { table: t, by: Some(_t_gho) }`),
    /// or `None` when it was created by `CREATE [OR REPLACE] TABLE`.
    /// The caller must resync `table` from the source.
    Replaced {
        table: TableId,
        by: Option<TableId>,
    },
    /// Every row was deleted without row events.
    Truncated {
        table: TableId,
    },
    Dropped {
        table: TableId,
    },
}

/// Why a change cannot be followed in place (the caller marks the table for a resync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatible {
    pub table: TableId,
    pub reason: String,
}

/// The statement could not be understood; `message` says why (the parser's
/// message for a syntax sqlparser does not support).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot interpret DDL statement ({message}): {statement}")]
pub struct DdlError {
    pub message: String,
    pub statement: String,
}

/// Applies one query event's SQL to the tracked tables; see the module doc.
///
/// `default_schema` is the event's current database, used for unqualified
/// names. Text columns defined without `CHARACTER SET`/`COLLATE` take their
/// table's default charset: the one the statement sets, else the recorded one
/// (`SourceTable::charset`); `table_charset` is only asked for a table whose
/// recorded definition has none (recorded before it was kept), and `utf8mb4`
/// is assumed when it has none either.
pub fn apply(
    default_schema: &str,
    sql: &str,
    tracked: &[SourceTable],
    table_charset: &dyn Fn(&TableId) -> Option<String>,
) -> Result<Vec<Result<SchemaChange, Incompatible>>, DdlError> {
    let err = |message: String| DdlError { message, statement: sql.to_string() };
    let tokens: Vec<TokenWithSpan> = Tokenizer::new(&MySqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| err(e.to_string()))?
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let Some((kind, tokens)) = classify(tokens) else {
        return Ok(vec![]);
    };
    let mut tokens = without_compressed_attribute(tokens);
    let relevant = tokens.iter().any(|t| match &t.token {
        Token::Word(w) => tracked.iter().any(|s| s.id.table == w.value),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => tracked.iter().any(|t| &t.id.table == s),
        _ => false,
    });
    if !relevant {
        return Ok(vec![]);
    }
    let mut alter_prep = None;
    if kind == Kind::Alter {
        let prep = prepare_alter(tokens).map_err(err)?;
        if prep.clauses_kept == 0 && prep.forced.is_none() && prep.table_charset.is_none() {
            return Ok(vec![]);
        }
        tokens = prep.tokens.clone();
        alter_prep = Some(prep);
    }
    let mut state = State {
        default_schema,
        slots: tracked.iter().map(|t| Slot { original: t.id.clone(), table: t.clone() }).collect(),
        tracked_names: tracked.iter().map(|t| t.id.clone()).collect(),
        out: Vec::new(),
        charset: table_charset,
    };
    if let Some(prep) = alter_prep.as_ref().filter(|p| p.clauses_kept == 0) {
        // Only row-changing clauses such as DROP PARTITION, or table options: nothing to parse.
        let id = state.resolve(&prep.name).map_err(err)?;
        if let Some(i) = state.slot(&id) {
            if let Some(reason) = &prep.forced {
                state.out.push(Err(Incompatible { table: state.slots[i].table.id.clone(), reason: resync(reason, &id) }));
            } else if let Some(set) = prep.table_charset.clone().filter(|set| *set != state.slots[i].table.charset) {
                let mut new = state.slots[i].table.clone();
                new.charset = set;
                state.slots[i].table = new.clone();
                state.out.push(Ok(SchemaChange::Altered { table: id, new, ops: vec![] }));
            }
        }
        return Ok(state.out);
    }
    let statements = Parser::new(&MySqlDialect {}).with_tokens_with_locations(tokens).parse_statements().map_err(|e| err(e.to_string()))?;
    for st in &statements {
        state.statement(st, alter_prep.as_ref()).map_err(err)?;
    }
    Ok(state.out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Alter,
    Rename,
    Truncate,
    Drop,
    Create,
}

fn word(t: &TokenWithSpan) -> Option<String> {
    match &t.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn is_word(t: Option<&TokenWithSpan>, w: &str) -> bool {
    t.and_then(word).as_deref() == Some(w)
}

/// Decides from the leading keywords whether the statement can concern a table;
/// drops `ONLINE`/`IGNORE` after `ALTER`, which sqlparser does not know.
fn classify(mut tokens: Vec<TokenWithSpan>) -> Option<(Kind, Vec<TokenWithSpan>)> {
    let w = |i: usize, tokens: &[TokenWithSpan]| tokens.get(i).and_then(word).unwrap_or_default();
    let kind = match w(0, &tokens).as_str() {
        "ALTER" => {
            while matches!(w(1, &tokens).as_str(), "ONLINE" | "OFFLINE" | "IGNORE") {
                tokens.remove(1);
            }
            (w(1, &tokens) == "TABLE").then_some(Kind::Alter)?
        }
        "RENAME" => (w(1, &tokens) == "TABLE").then_some(Kind::Rename)?,
        "TRUNCATE" => Kind::Truncate,
        "DROP" => (w(1, &tokens) == "TABLE").then_some(Kind::Drop)?,
        "CREATE" => {
            let mut i = 1;
            if w(i, &tokens) == "OR" && w(i + 1, &tokens) == "REPLACE" {
                i += 2;
            }
            (w(i, &tokens) == "TABLE").then_some(Kind::Create)?
        }
        _ => return None,
    };
    Some((kind, tokens))
}

/// An `ALTER TABLE` rewritten into what sqlparser parses.
#[derive(Debug, Clone)]
struct AlterPrep {
    tokens: Vec<TokenWithSpan>,
    name: ObjectName,
    clauses_kept: usize,
    /// Per kept clause: MariaDB's `IF [NOT] EXISTS` was given on ADD/CHANGE/MODIFY COLUMN.
    if_flags: Vec<bool>,
    /// A clause that changes rows without row events.
    forced: Option<String>,
    /// The table default charset a `[DEFAULT] CHARACTER SET|CHARSET|COLLATE`
    /// table option sets; `Some(None)` for `DEFAULT` (the database's, which
    /// the statement does not name).
    table_charset: Option<Option<String>>,
}

/// Table options and clauses that change neither the columns nor the primary key.
const NO_OP_CLAUSES: &[&str] = &[
    "ALGORITHM",
    "LOCK",
    "ENGINE",
    "AUTO_INCREMENT",
    "AVG_ROW_LENGTH",
    "CHECKSUM",
    "TABLE_CHECKSUM",
    "COMMENT",
    "COMPRESSION",
    "CONNECTION",
    "DATA",
    "INDEX",
    "DELAY_KEY_WRITE",
    "ENCRYPTION",
    "ENCRYPTED",
    "ENCRYPTION_KEY_ID",
    "INSERT_METHOD",
    "KEY_BLOCK_SIZE",
    "MAX_ROWS",
    "MIN_ROWS",
    "PACK_KEYS",
    "PASSWORD",
    "ROW_FORMAT",
    "SECONDARY_ENGINE",
    "SECONDARY_ENGINE_ATTRIBUTE",
    "ENGINE_ATTRIBUTE",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "TABLESPACE",
    "UNION",
    "PAGE_CHECKSUM",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "TRANSACTIONAL",
    "IETF_QUOTES",
    "AUTOEXTEND_SIZE",
    "SEQUENCE",
    "FORCE",
    "ORDER",
    "ENABLE",
    "DISABLE",
    "WITH",
    "WITHOUT",
    "DEFAULT",
    "CHARACTER",
    "CHARSET",
    "COLLATE",
    "REMOVE",
    "PARTITION",
    "PARTITIONS",
    "COALESCE",
    "REORGANIZE",
    "ANALYZE",
    "CHECK",
    "OPTIMIZE",
    "REBUILD",
    "REPAIR",
    "SECONDARY_LOAD",
    "SECONDARY_UNLOAD",
    "UPGRADE",
    "ALTER",
    "SUBPARTITION",
];

/// Splits the clauses of an `ALTER TABLE`, keeps those that can change the
/// columns or the primary key and rewrites MariaDB/MySQL forms sqlparser lacks.
fn prepare_alter(tokens: Vec<TokenWithSpan>) -> Result<AlterPrep, String> {
    // ALTER TABLE [IF EXISTS] name
    let mut i = 2;
    if is_word(tokens.get(i), "IF") && is_word(tokens.get(i + 1), "EXISTS") {
        i += 2;
    }
    let mut parts = Vec::new();
    loop {
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => {
                let mut ident = sqlparser::ast::Ident::new(&w.value);
                ident.quote_style = w.quote_style;
                parts.push(ident)
            }
            _ => return Err("ALTER TABLE without a table name".into()),
        }
        i += 1;
        if matches!(tokens.get(i).map(|t| &t.token), Some(Token::Period)) {
            i += 1;
        } else {
            break;
        }
    }
    let name = ObjectName::from(parts);
    let mut prefix: Vec<TokenWithSpan> = tokens[..i].to_vec();
    // MariaDB: WAIT n | NOWAIT
    if is_word(tokens.get(i), "NOWAIT") {
        i += 1;
    } else if is_word(tokens.get(i), "WAIT") && matches!(tokens.get(i + 1).map(|t| &t.token), Some(Token::Number(..))) {
        i += 2;
    }
    let mut body: &[TokenWithSpan] = &tokens[i..];
    while let Some(TokenWithSpan { token: Token::SemiColon, .. }) = body.last() {
        body = &body[..body.len() - 1];
    }
    // Split at top-level commas.
    let mut clauses: Vec<Vec<TokenWithSpan>> = vec![Vec::new()];
    let mut depth = 0i32;
    for t in body {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                clauses.push(Vec::new());
                continue;
            }
            _ => {}
        }
        clauses.last_mut().expect("one clause").push(t.clone());
    }
    let mut kept: Vec<Vec<TokenWithSpan>> = Vec::new();
    let mut if_flags = Vec::new();
    let mut forced: Option<String> = None;
    let mut table_charset: Option<Option<String>> = None;
    for mut c in clauses {
        if c.is_empty() {
            if body.is_empty() {
                continue;
            }
            return Err("empty ALTER TABLE clause".into());
        }
        let w0 = word(&c[0]).unwrap_or_default();
        let w1 = c.get(1).and_then(word).unwrap_or_default();
        let mut flag = false;
        let keep = match w0.as_str() {
            "ADD" => match w1.as_str() {
                "INDEX" | "KEY" | "UNIQUE" | "FULLTEXT" | "SPATIAL" | "FOREIGN" | "CHECK" | "PARTITION" | "PERIOD" | "SYSTEM" => false,
                "CONSTRAINT" => {
                    // ADD CONSTRAINT [symbol] PRIMARY KEY ... is kept; other constraints are not.
                    c.iter().skip(2).take(2).any(|t| word(t).as_deref() == Some("PRIMARY"))
                }
                "PRIMARY" => true,
                _ => {
                    let at = if w1 == "COLUMN" { 2 } else { 1 };
                    flag = strip_if(&mut c, at, true);
                    if matches!(c.get(at).map(|t| &t.token), Some(Token::LParen)) {
                        return Err("ADD COLUMN (col, ...) lists are not supported by the SQL parser".into());
                    }
                    true
                }
            },
            "DROP" => match w1.as_str() {
                "INDEX" | "KEY" | "FOREIGN" | "CHECK" | "PERIOD" | "SYSTEM" => false,
                "CONSTRAINT" => {
                    let n = c.iter().skip(2).find(|t| !is_word(Some(t), "IF") && !is_word(Some(t), "EXISTS"));
                    matches!(n.map(|t| &t.token), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("PRIMARY"))
                }
                "PARTITION" => {
                    forced.get_or_insert_with(|| "DROP PARTITION deletes rows without row events".into());
                    false
                }
                _ => true,
            },
            "CHANGE" | "MODIFY" => {
                let at = if w1 == "COLUMN" { 2 } else { 1 };
                flag = strip_if(&mut c, at, false);
                true
            }
            "RENAME" => match w1.as_str() {
                "INDEX" | "KEY" => false,
                "COLUMN" | "TO" | "AS" => true,
                _ => {
                    // MySQL allows RENAME new_name; sqlparser wants TO.
                    let span = c[0].span;
                    c.insert(1, TokenWithSpan::new(Token::make_keyword("TO"), span));
                    true
                }
            },
            "CONVERT" => {
                forced.get_or_insert_with(|| "CONVERT TO CHARACTER SET re-encodes every text column (types may change too)".into());
                false
            }
            "TRUNCATE" | "EXCHANGE" if w1 == "PARTITION" => {
                forced.get_or_insert_with(|| format!("{w0} PARTITION changes rows without row events"));
                false
            }
            "DISCARD" | "IMPORT" => {
                if w0 == "IMPORT" {
                    forced.get_or_insert_with(|| format!("IMPORT {w1} replaces rows without row events"));
                }
                false
            }
            w if NO_OP_CLAUSES.contains(&w) => {
                // Table options may follow one another without commas (`ENGINE=x DEFAULT CHARSET=y`).
                if w != "ALTER" {
                    if let Some(cs) = table_charset_option(&c) {
                        table_charset = Some(cs);
                    }
                }
                false
            }
            _ => true,
        };
        if keep {
            if matches!(w0.as_str(), "ADD" | "CHANGE" | "MODIFY") {
                rewrite_charset(&mut c);
            }
            kept.push(c);
            if_flags.push(flag);
        }
    }
    let clauses_kept = kept.len();
    for (n, c) in kept.into_iter().enumerate() {
        if n > 0 {
            let span = c[0].span;
            prefix.push(TokenWithSpan::new(Token::Comma, span));
        }
        prefix.extend(c);
    }
    Ok(AlterPrep { tokens: prefix, name, clauses_kept, if_flags, forced, table_charset })
}

/// The charset a run of table options sets as the table default:
/// `[DEFAULT] {CHARACTER SET | CHARSET} [=] cs` (preferred) or
/// `[DEFAULT] COLLATE [=] collation` (its charset). `DEFAULT` as the value
/// (the database's, which the statement does not name) is `Some(None)`.
fn table_charset_option(c: &[TokenWithSpan]) -> Option<Option<String>> {
    let value_at = |k: usize| -> Option<Option<String>> {
        let k = if matches!(c.get(k).map(|t| &t.token), Some(Token::Eq)) { k + 1 } else { k };
        let v = match &c.get(k)?.token {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
            _ => return None,
        };
        Some((!v.eq_ignore_ascii_case("DEFAULT")).then(|| v.to_ascii_lowercase()))
    };
    let (mut charset, mut collation) = (None, None);
    for k in 0..c.len() {
        match word(&c[k]).as_deref() {
            Some("CHARSET") => charset = value_at(k + 1).or(charset),
            Some("CHARACTER") if is_word(c.get(k + 1), "SET") => charset = value_at(k + 2).or(charset),
            Some("COLLATE") => collation = value_at(k + 1).or(collation),
            _ => {}
        }
    }
    charset.or_else(|| collation.map(|n: Option<String>| n.map(|n| collation_charset(&n))))
}

/// The charset a collation belongs to (`latin1_swedish_ci` → `latin1`).
fn collation_charset(collation: &str) -> String {
    if collation == "binary" {
        collation.to_string()
    } else {
        collation.split('_').next().unwrap_or("").to_string()
    }
}

/// Removes `IF NOT EXISTS` (when `not`) or `IF EXISTS` at `at`; tells whether it was there.
fn strip_if(c: &mut Vec<TokenWithSpan>, at: usize, not: bool) -> bool {
    let want: &[&str] = if not { &["IF", "NOT", "EXISTS"] } else { &["IF", "EXISTS"] };
    let present = want.iter().enumerate().all(|(k, w)| is_word(c.get(at + k), w));
    if present {
        c.drain(at..at + want.len());
    }
    present
}

/// `CHARSET x` in a column definition → `CHARACTER SET x` (sqlparser only knows the latter).
fn rewrite_charset(c: &mut Vec<TokenWithSpan>) {
    const TEXT_TYPES: &[&str] = &["TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "CHAR", "VARCHAR", "CHARACTER"];
    let mut k = 1;
    while k < c.len() {
        let after_type = match &c[k - 1].token {
            Token::RParen => true,
            Token::Word(w) => w.quote_style.is_none() && TEXT_TYPES.contains(&w.value.to_ascii_uppercase().as_str()),
            _ => false,
        };
        if after_type && is_word(c.get(k), "CHARSET") {
            let span = c[k].span;
            c[k] = TokenWithSpan::new(Token::make_keyword("CHARACTER"), span);
            c.insert(k + 1, TokenWithSpan::new(Token::make_keyword("SET"), span));
        }
        k += 1;
    }
}

/// A tracked table as the statement goes on.
struct Slot {
    /// Its name when `apply` was called.
    original: TableId,
    /// Its current definition (`table.id` is its current name).
    table: SourceTable,
}

struct State<'a> {
    default_schema: &'a str,
    slots: Vec<Slot>,
    tracked_names: Vec<TableId>,
    out: Vec<Result<SchemaChange, Incompatible>>,
    charset: &'a dyn Fn(&TableId) -> Option<String>,
}

fn resync(reason: &str, id: &TableId) -> String {
    format!("{reason}; resync table {id}")
}

impl State<'_> {
    fn resolve(&self, name: &ObjectName) -> Result<TableId, String> {
        let parts: Vec<&str> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.as_str()).collect();
        match parts.as_slice() {
            [t] if parts.len() == name.0.len() => Ok(TableId::new(self.default_schema, *t)),
            [s, t] if parts.len() == name.0.len() => Ok(TableId::new(*s, *t)),
            _ => Err(format!("unexpected table name {name}")),
        }
    }

    fn slot(&self, id: &TableId) -> Option<usize> {
        self.slots.iter().position(|s| &s.table.id == id)
    }

    fn rename(&mut self, from: TableId, to: TableId) {
        let moved = self.slot(&from);
        if let Some(i) = moved {
            self.slots[i].table.id = to.clone();
            self.out.push(Ok(SchemaChange::Renamed { from: from.clone(), to: to.clone() }));
        }
        let arriving_is_original = moved.is_some_and(|i| self.slots[i].original == to);
        if self.tracked_names.contains(&to) && !arriving_is_original {
            self.out.push(Ok(SchemaChange::Replaced { table: to, by: Some(from) }));
        }
    }

    fn statement(&mut self, st: &Statement, prep: Option<&AlterPrep>) -> Result<(), String> {
        match st {
            Statement::AlterTable(a) => {
                let id = self.resolve(&a.name)?;
                let renames: Vec<TableId> = a
                    .operations
                    .iter()
                    .filter_map(|op| match op {
                        AlterTableOperation::RenameTable { table_name } => Some(match table_name {
                            RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
                        }),
                        _ => None,
                    })
                    .map(|n| self.resolve(n))
                    .collect::<Result<_, _>>()?;
                if let Some(i) = self.slot(&id) {
                    let flags = prep.map(|p| p.if_flags.clone()).unwrap_or_default();
                    if !flags.is_empty() && flags.len() != a.operations.len() {
                        return Err(format!("{} ALTER TABLE clauses parsed into {} operations", flags.len(), a.operations.len()));
                    }
                    // The table default a text column added here inherits: the one this
                    // statement sets (MySQL applies it to the statement's own columns), else the recorded one.
                    // (`DEFAULT`, the database's, is not named: what the source says, else the recorded one.)
                    let recorded = self.slots[i].table.charset.clone().or_else(|| (self.charset)(&id));
                    let set = prep.and_then(|p| p.table_charset.clone());
                    let cs = match &set {
                        Some(Some(cs)) => Some(cs.clone()),
                        Some(None) => (self.charset)(&id).or(recorded),
                        None => recorded,
                    };
                    let result = alter_columns(&self.slots[i].table, &a.operations, &flags, cs.as_deref())?;
                    let forced = prep.and_then(|p| p.forced.clone());
                    let charset_changed = set.as_ref().is_some_and(|set| *set != self.slots[i].table.charset);
                    let set = set.flatten();
                    match (result, forced) {
                        (_, Some(reason)) | (Err(reason), _) => {
                            self.out.push(Err(Incompatible { table: id.clone(), reason: resync(&reason, &id) }))
                        }
                        (Ok(None), None) if !charset_changed => {}
                        (Ok(None), None) => {
                            let mut new = self.slots[i].table.clone();
                            new.charset = set;
                            self.slots[i].table = new.clone();
                            self.out.push(Ok(SchemaChange::Altered { table: id.clone(), new, ops: vec![] }));
                        }
                        (Ok(Some((mut new, ops))), None) => {
                            if charset_changed {
                                new.charset = set;
                            }
                            self.slots[i].table = new.clone();
                            self.out.push(Ok(SchemaChange::Altered { table: id.clone(), new, ops }));
                        }
                    }
                }
                let mut from = id;
                for to in renames {
                    self.rename(from.clone(), to.clone());
                    from = to;
                }
            }
            Statement::RenameTable(pairs) => {
                for p in pairs {
                    let (from, to) = (self.resolve(&p.old_name)?, self.resolve(&p.new_name)?);
                    self.rename(from, to);
                }
            }
            Statement::Truncate(t) => {
                for target in &t.table_names {
                    let id = self.resolve(&target.name)?;
                    if self.slot(&id).is_some() {
                        self.out.push(Ok(SchemaChange::Truncated { table: id }));
                    }
                }
            }
            Statement::Drop { object_type: ObjectType::Table, names, temporary: false, .. } => {
                for n in names {
                    let id = self.resolve(n)?;
                    if let Some(i) = self.slot(&id) {
                        self.slots.remove(i);
                        self.out.push(Ok(SchemaChange::Dropped { table: id }));
                    }
                }
            }
            Statement::CreateTable(CreateTable { name, temporary: false, or_replace, if_not_exists, .. }) => {
                let id = self.resolve(name)?;
                let exists = self.slot(&id).is_some();
                // CREATE TABLE IF NOT EXISTS on an existing table is a logged no-op.
                let replaced = if exists { *or_replace || !*if_not_exists } else { self.tracked_names.contains(&id) };
                if replaced {
                    self.out.push(Ok(SchemaChange::Replaced { table: id, by: None }));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Column facts of a definition beyond `SourceColumn`.
struct Built {
    col: SourceColumn,
    primary_key: bool,
    generated: bool,
    auto_increment: bool,
    /// `Some(None)`: DEFAULT NULL; `Some(Some(v))`: a literal; `None`: no DEFAULT.
    default: Option<Option<String>>,
    /// A DEFAULT that MySQL evaluates (CURRENT_TIMESTAMP, (expr), b'1', ...).
    default_expr: Option<String>,
}

fn find(cols: &[SourceColumn], name: &str) -> Option<usize> {
    cols.iter().position(|c| c.name.eq_ignore_ascii_case(name))
}

fn in_pk(t: &SourceTable, name: &str) -> bool {
    t.primary_key.iter().any(|k| k.eq_ignore_ascii_case(name))
}

type AlterResult = Result<Option<(SourceTable, Vec<AlterOp>)>, String>;

/// Applies the column operations of one `ALTER TABLE` to a recorded table.
/// Outer `Err`: not understood (a `DdlError`); inner `Err`: incompatible (the reason).
fn alter_columns(
    old: &SourceTable,
    ops: &[AlterTableOperation],
    if_flags: &[bool],
    table_charset: Option<&str>,
) -> Result<AlterResult, String> {
    let mut t = old.clone();
    let mut out = Vec::new();
    let pk_text = |t: &SourceTable| t.primary_key.join(", ");
    for (n, op) in ops.iter().enumerate() {
        let flag = if_flags.get(n).copied().unwrap_or(false);
        match op {
            AlterTableOperation::AddColumn { if_not_exists, column_def, column_position, .. } => {
                let name = &column_def.name.value;
                if find(&t.columns, name).is_some() {
                    if *if_not_exists || flag {
                        continue;
                    }
                    return Ok(Err(format!("ADD COLUMN {name}: the recorded schema already has this column")));
                }
                let b = build(column_def, table_charset)?;
                if b.primary_key {
                    return Ok(Err(format!("ADD COLUMN {name} ... PRIMARY KEY changes the primary key")));
                }
                let default = match fill_value(&b) {
                    Ok(d) => d,
                    Err(why) => return Ok(Err(format!("ADD COLUMN {name} {}: {why}", b.col.column_type))),
                };
                let at = match position(&t.columns, column_position.as_ref()) {
                    Ok(at) => at.unwrap_or(t.columns.len()),
                    Err(e) => return Ok(Err(e)),
                };
                t.columns.insert(at, b.col);
                out.push(AlterOp::AddColumn { name: name.clone(), default });
            }
            AlterTableOperation::DropColumn { column_names, if_exists, .. } => {
                for c in column_names {
                    let Some(i) = find(&t.columns, &c.value) else {
                        if *if_exists {
                            continue;
                        }
                        return Ok(Err(format!("DROP COLUMN {}: the recorded schema has no such column", c.value)));
                    };
                    let name = t.columns[i].name.clone();
                    if in_pk(&t, &name) {
                        return Ok(Err(format!("DROP COLUMN {name} drops a primary-key column (key: {})", pk_text(&t))));
                    }
                    t.columns.remove(i);
                    out.push(AlterOp::DropColumn { name });
                }
            }
            AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                let Some(i) = find(&t.columns, &old_column_name.value) else {
                    return Ok(Err(format!("RENAME COLUMN {}: the recorded schema has no such column", old_column_name.value)));
                };
                let from = t.columns[i].name.clone();
                let to = new_column_name.value.clone();
                if let Some(e) = rename_check(&t, &from, &to) {
                    return Ok(Err(e));
                }
                t.columns[i].name = to.clone();
                out.push(AlterOp::RenameColumn { from, to });
            }
            AlterTableOperation::ChangeColumn { old_name, new_name, data_type, options, column_position } => {
                let def = ColumnDef { name: new_name.clone(), data_type: data_type.clone(), options: vec![] };
                match redefine(&mut t, &old_name.value, def, options, column_position.as_ref(), flag, table_charset)? {
                    Redefined::Skipped => {}
                    Redefined::Op(op) => out.push(op),
                    Redefined::Incompatible(e) => return Ok(Err(e)),
                }
            }
            AlterTableOperation::ModifyColumn { col_name, data_type, options, column_position } => {
                let keep_name = find(&t.columns, &col_name.value).map(|i| t.columns[i].name.clone());
                let mut name = col_name.clone();
                if let Some(k) = keep_name {
                    name.value = k;
                }
                let def = ColumnDef { name, data_type: data_type.clone(), options: vec![] };
                match redefine(&mut t, &col_name.value, def, options, column_position.as_ref(), flag, table_charset)? {
                    Redefined::Skipped => {}
                    Redefined::Op(op) => out.push(op),
                    Redefined::Incompatible(e) => return Ok(Err(e)),
                }
            }
            AlterTableOperation::DropPrimaryKey { .. } => {
                return Ok(Err(format!("DROP PRIMARY KEY removes the primary key ({})", pk_text(&t))));
            }
            AlterTableOperation::DropConstraint { name, .. } if name.value.eq_ignore_ascii_case("PRIMARY") => {
                return Ok(Err(format!("DROP CONSTRAINT PRIMARY removes the primary key ({})", pk_text(&t))));
            }
            AlterTableOperation::AddConstraint { constraint: TableConstraint::PrimaryKey(pk), .. } => {
                let cols: Vec<String> = pk.columns.iter().map(|c| c.column.expr.to_string()).collect();
                return Ok(Err(format!(
                    "ADD PRIMARY KEY ({}) changes the primary key (was: {})",
                    cols.join(", "),
                    if t.primary_key.is_empty() { "none".into() } else { pk_text(&t) }
                )));
            }
            AlterTableOperation::AddConstraint { .. }
            | AlterTableOperation::DropConstraint { .. }
            | AlterTableOperation::RenameTable { .. }
            | AlterTableOperation::Algorithm { .. }
            | AlterTableOperation::Lock { .. }
            | AlterTableOperation::AutoIncrement { .. }
            | AlterTableOperation::AlterColumn { .. }
            | AlterTableOperation::DropIndex { .. }
            | AlterTableOperation::DropForeignKey { .. } => {}
            other => return Err(format!("unsupported ALTER TABLE operation: {other}")),
        }
    }
    if out.is_empty() {
        return Ok(Ok(None));
    }
    for (k, c) in t.columns.iter_mut().enumerate() {
        c.ordinal = k as u32 + 1;
    }
    Ok(Ok(Some((t, out))))
}

fn rename_check(t: &SourceTable, from: &str, to: &str) -> Option<String> {
    if in_pk(t, from) && from != to {
        return Some(format!("renaming primary-key column {from} to {to} changes the primary key"));
    }
    if !from.eq_ignore_ascii_case(to) && find(&t.columns, to).is_some() {
        return Some(format!("renaming {from} to {to}: the recorded schema already has a column {to}"));
    }
    None
}

enum Redefined {
    Skipped,
    Op(AlterOp),
    Incompatible(String),
}

/// `CHANGE old new type ...` / `MODIFY col type ...`.
fn redefine(
    t: &mut SourceTable,
    old_name: &str,
    mut def: ColumnDef,
    options: &[ColumnOption],
    pos: Option<&MySQLColumnPosition>,
    if_exists: bool,
    table_charset: Option<&str>,
) -> Result<Redefined, String> {
    let Some(i) = find(&t.columns, old_name) else {
        if if_exists {
            return Ok(Redefined::Skipped);
        }
        return Ok(Redefined::Incompatible(format!("column {old_name}: the recorded schema has no such column")));
    };
    def.options = options.iter().map(|o| sqlparser::ast::ColumnOptionDef { name: None, option: o.clone() }).collect();
    let b = build(&def, table_charset)?;
    let old = t.columns[i].clone();
    let new_name = b.col.name.clone();
    if let Some(e) = rename_check(t, &old.name, &new_name) {
        return Ok(Redefined::Incompatible(e));
    }
    let key = in_pk(t, &old.name);
    if b.primary_key && !key {
        return Ok(Redefined::Incompatible(format!("column {new_name} ... PRIMARY KEY changes the primary key")));
    }
    let mut col = b.col;
    col.ordinal = old.ordinal; // renumbered at the end
    if key {
        col.nullable = false; // MySQL forces primary-key columns NOT NULL.
    }
    if let Err(why) = compatible(&old, &col, key) {
        return Ok(Redefined::Incompatible(why));
    }
    if old.extra.contains("GENERATED") != col.extra.contains("GENERATED") {
        return Ok(Redefined::Incompatible(format!(
            "column {}: switching between a stored and a generated column rewrites its values",
            old.name
        )));
    }
    let mut cols = t.columns.clone();
    cols.remove(i);
    let at = match position(&cols, pos) {
        Ok(at) => at.unwrap_or(i),
        Err(e) => return Ok(Redefined::Incompatible(e)),
    };
    cols.insert(at, col);
    if cols == t.columns {
        return Ok(Redefined::Skipped); // the same definition again: nothing changed
    }
    t.columns = cols;
    if key && old.name != new_name {
        for k in &mut t.primary_key {
            if *k == old.name {
                *k = new_name.clone();
            }
        }
    }
    Ok(Redefined::Op(AlterOp::ModifyColumn { old_name: old.name, new_name }))
}

/// Index for `FIRST` / `AFTER x`; `None` when no position was given.
fn position(cols: &[SourceColumn], pos: Option<&MySQLColumnPosition>) -> Result<Option<usize>, String> {
    match pos {
        None => Ok(None),
        Some(MySQLColumnPosition::First) => Ok(Some(0)),
        Some(MySQLColumnPosition::After(x)) => match find(cols, &x.value) {
            Some(i) => Ok(Some(i + 1)),
            None => Err(format!("AFTER {}: the recorded schema has no such column", x.value)),
        },
    }
}

/// How a column type reads in a reason: `varchar(10) character set latin1 not null`.
fn describe(c: &SourceColumn) -> String {
    let mut s = c.column_type.clone();
    if let Some(cs) = &c.charset {
        s.push_str(&format!(" character set {cs}"));
    }
    if !c.nullable {
        s.push_str(" not null");
    }
    s
}

fn int_rank(dt: &str) -> Option<u8> {
    Some(match dt {
        "tinyint" => 1,
        "smallint" => 2,
        "mediumint" => 3,
        "int" | "integer" => 4,
        "bigint" => 5,
        _ => return None,
    })
}

fn text_rank(dt: &str) -> Option<u8> {
    Some(match dt {
        "tinytext" => 1,
        "text" => 2,
        "mediumtext" => 3,
        "longtext" => 4,
        _ => return None,
    })
}

fn blob_rank(dt: &str) -> Option<u8> {
    Some(match dt {
        "tinyblob" => 1,
        "blob" => 2,
        "mediumblob" => 3,
        "longblob" => 4,
        _ => return None,
    })
}

/// Length in `char(n)`, `varbinary(n)`, `bit(n)`...
fn type_len(ct: &str) -> Option<u64> {
    let s = &ct[ct.find('(')? + 1..];
    s[..s.find([')', ','])?].trim().parse().ok()
}

/// Whether a column redefinition keeps every stored value and maps onto a
/// ClickHouse type the existing column converts to without loss.
fn compatible(old: &SourceColumn, new: &SourceColumn, key: bool) -> Result<(), String> {
    let fail = |what: &str| Err(format!("column {}: {} → {} {what}", old.name, describe(old), describe(new)));
    if old.nullable && !new.nullable {
        return fail("makes a nullable column NOT NULL (existing NULLs are rewritten)");
    }
    let same_type = old.column_type == new.column_type && old.charset == new.charset;
    if same_type {
        return Ok(());
    }
    if key {
        return fail("changes the type of a primary-key column");
    }
    let (o, n) = (old.data_type.as_str(), new.data_type.as_str());
    if old.charset != new.charset && old.charset.is_some() && new.charset.is_some() {
        let ok = matches!(new.charset.as_deref(), Some("utf8mb4")) || matches!(old.charset.as_deref(), Some("ascii"));
        if !ok {
            return fail("changes the character set (values may be re-encoded lossily)");
        }
    }
    if old.unsigned() != new.unsigned() && int_rank(o).is_some() || (o == "decimal" && old.unsigned() != new.unsigned()) {
        return fail("changes the signedness");
    }
    let widen = |ok: bool, what: &str| if ok { Ok(()) } else { fail(what) };
    if let (Some(a), Some(b)) = (int_rank(o), int_rank(n)) {
        return widen(b >= a, "narrows the integer type");
    }
    match (o, n) {
        ("decimal", "decimal") => {
            let (p, s) = (old.numeric_precision.unwrap_or(10), old.numeric_scale.unwrap_or(0));
            let (p2, s2) = (new.numeric_precision.unwrap_or(10), new.numeric_scale.unwrap_or(0));
            if s2 != s {
                return fail("changes the decimal scale (values are rounded or rescaled)");
            }
            widen(p2 >= p && p2 - s2 >= p - s, "narrows the decimal precision")
        }
        ("float", "float") | ("double", "double") => {
            // Unconstrained → same; (M,D) → wider (M,D) or unconstrained.
            match (old.numeric_scale, new.numeric_scale) {
                (_, None) if !new.column_type.contains('(') => Ok(()),
                (Some(d), Some(d2)) => {
                    let (m, m2) = (old.numeric_precision.unwrap_or(0), new.numeric_precision.unwrap_or(0));
                    widen(d2 >= d && m2 - d2 >= m - d, "narrows the floating-point precision")
                }
                _ => fail("narrows the floating-point precision"),
            }
        }
        ("float", "double") => Ok(()),
        ("char" | "varchar", "varchar") | ("char", "char") | ("binary", "binary") | ("binary" | "varbinary", "varbinary") => {
            let (a, b) = (type_len(&old.column_type).unwrap_or(1), type_len(&new.column_type).unwrap_or(1));
            widen(b >= a, "narrows the length")
        }
        ("char" | "varchar", "text" | "mediumtext" | "longtext") => Ok(()),
        ("binary" | "varbinary", "blob" | "mediumblob" | "longblob") => Ok(()),
        ("datetime", "datetime") | ("timestamp", "timestamp") | ("time", "time") => {
            widen(new.datetime_precision >= old.datetime_precision, "narrows the fractional seconds")
        }
        ("bit", "bit") => {
            widen(type_len(&new.column_type).unwrap_or(1) >= type_len(&old.column_type).unwrap_or(1), "narrows the bit width")
        }
        ("enum", "enum") | ("set", "set") => {
            let (a, b) = (old.enum_values(), new.enum_values());
            widen(b.len() >= a.len() && b[..a.len()] == a[..], "changes existing values (only appending at the end is compatible)")
        }
        _ if o == n && (text_rank(o).is_some() || blob_rank(o).is_some()) => Ok(()),
        _ => {
            if let (Some(a), Some(b)) = (text_rank(o), text_rank(n)) {
                return widen(b >= a, "narrows the text type");
            }
            if let (Some(a), Some(b)) = (blob_rank(o), blob_rank(n)) {
                return widen(b >= a, "narrows the blob type");
            }
            if o == n && old.charset != new.charset {
                return Ok(()); // charset change already judged above
            }
            fail("changes the type family")
        }
    }
}

/// The value MySQL gives the rows already in the table for a new column, or why
/// it cannot be known without reading them.
fn fill_value(b: &Built) -> Result<Option<String>, String> {
    if b.generated {
        return Err("a generated column's values for existing rows are computed by MySQL, not logged".into());
    }
    if b.auto_increment {
        return Err("AUTO_INCREMENT numbers the existing rows without row events".into());
    }
    if let Some(e) = &b.default_expr {
        return Err(format!("DEFAULT {e} is evaluated by MySQL for the existing rows, not logged"));
    }
    let c = &b.col;
    let date_like = matches!(c.data_type.as_str(), "date" | "datetime" | "timestamp");
    match &b.default {
        Some(Some(_)) if c.data_type == "timestamp" => {
            Err("a TIMESTAMP literal DEFAULT is read in the session time zone, unknown here".into())
        }
        Some(Some(v)) if date_like && v.starts_with("0000") => Ok(None),
        Some(v) => Ok(v.clone()),
        None if !c.nullable && matches!(c.data_type.as_str(), "enum") => Ok(c.enum_values().into_iter().next()),
        None => Ok(None),
    }
}

fn unsupported(dt: &DataType) -> String {
    format!("unsupported column type {dt}")
}

/// Builds the recorded column for a definition, as `information_schema` reports it.
fn build(def: &ColumnDef, table_charset: Option<&str>) -> Result<Built, String> {
    let mut col = SourceColumn::new(&def.name.value, "", "", true);
    let mut b = Built { col: col.clone(), primary_key: false, generated: false, auto_increment: false, default: None, default_expr: None };
    let mut text = false;
    let mut serial = false;
    type_of(&def.data_type, &mut col, &mut text, &mut serial)?;
    let mut charset: Option<String> = None;
    let mut collation_charset: Option<String> = None;
    let mut extras: Vec<String> = Vec::new();
    let mut on_update: Option<String> = None;
    for o in &def.options {
        match &o.option {
            ColumnOption::Null => col.nullable = true,
            ColumnOption::NotNull => col.nullable = false,
            ColumnOption::PrimaryKey(_) => {
                b.primary_key = true;
                col.nullable = false;
            }
            ColumnOption::CharacterSet(n) => charset = Some(n.to_string().trim_matches('`').to_ascii_lowercase()),
            ColumnOption::Collation(n) => {
                let n = n.to_string().trim_matches('`').to_ascii_lowercase();
                collation_charset = Some(if n == "binary" { n } else { n.split('_').next().unwrap_or("").to_string() });
            }
            ColumnOption::Default(e) => match literal(e) {
                Some(v) => b.default = Some(v),
                None => b.default_expr = Some(e.to_string()),
            },
            ColumnOption::Generated { generation_expr: Some(_), generation_expr_mode, .. } => {
                b.generated = true;
                extras.push(match generation_expr_mode {
                    Some(GeneratedExpressionMode::Stored) => "STORED GENERATED".into(),
                    _ => "VIRTUAL GENERATED".into(),
                });
            }
            ColumnOption::DialectSpecific(toks)
                if toks.iter().any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("AUTO_INCREMENT"))) =>
            {
                b.auto_increment = true;
                extras.push("auto_increment".into());
            }
            ColumnOption::OnUpdate(e) => on_update = Some(format!("on update {e}")),
            ColumnOption::Invisible => extras.push("INVISIBLE".into()),
            ColumnOption::Comment(_)
            | ColumnOption::Unique(_)
            | ColumnOption::Check(_)
            | ColumnOption::ForeignKey(_)
            | ColumnOption::Srid(_) => {}
            other => return Err(format!("unsupported column option {other} on column {}", col.name)),
        }
    }
    if serial {
        // SERIAL = BIGINT UNSIGNED NOT NULL AUTO_INCREMENT UNIQUE
        col.nullable = false;
        b.auto_increment = true;
        extras.push("auto_increment".into());
    }
    if b.default_expr.is_some() {
        extras.insert(0, "DEFAULT_GENERATED".into());
    }
    if let Some(u) = on_update {
        extras.push(u);
    }
    col.extra = extras.join(" ");
    if text {
        let cs =
            charset.or(collation_charset).or_else(|| table_charset.map(|s| s.to_ascii_lowercase())).unwrap_or_else(|| "utf8mb4".into());
        let cs = if cs == "utf8" { "utf8mb3".to_string() } else { cs };
        if cs == "binary" && col.data_type != "enum" && col.data_type != "set" {
            // MySQL turns character types with CHARACTER SET binary into binary types.
            let (dt, ct) = match col.data_type.as_str() {
                "char" => ("binary", col.column_type.replacen("char", "binary", 1)),
                "varchar" => ("varbinary", col.column_type.replacen("varchar", "varbinary", 1)),
                "tinytext" => ("tinyblob", "tinyblob".into()),
                "text" => ("blob", "blob".into()),
                "mediumtext" => ("mediumblob", "mediumblob".into()),
                _ => ("longblob", "longblob".into()),
            };
            col.data_type = dt.into();
            col.column_type = ct;
        } else {
            col.charset = Some(cs);
        }
    }
    b.col = col;
    Ok(b)
}

/// A DEFAULT that is a plain literal: `Some(None)` for NULL, `Some(Some(text))` otherwise.
fn literal(e: &Expr) -> Option<Option<String>> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Null => Some(None),
            Value::Number(n, _) => Some(Some(n.clone())),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Some(s.clone())),
            Value::Boolean(b) => Some(Some(if *b { "1" } else { "0" }.into())),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match literal(expr)? {
            Some(n) if n.parse::<f64>().is_ok() => Some(Some(format!("-{n}"))),
            _ => None,
        },
        Expr::UnaryOp { op: UnaryOperator::Plus, expr } => literal(expr),
        _ => None,
    }
}

fn quote_values(vals: &[String]) -> String {
    vals.iter().map(|v| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))).collect::<Vec<_>>().join(",")
}

/// Fills data_type, column_type, precision/scale and datetime precision.
fn type_of(dt: &DataType, c: &mut SourceColumn, text: &mut bool, serial: &mut bool) -> Result<(), String> {
    let int = |c: &mut SourceColumn, name: &str, unsigned: bool, prec: u32, width: Option<u64>| {
        c.data_type = name.into();
        c.column_type = match width {
            Some(1) if name == "tinyint" && !unsigned => "tinyint(1)".into(),
            _ => name.into(),
        };
        if unsigned {
            c.column_type.push_str(" unsigned");
        }
        c.numeric_precision = Some(if name == "bigint" && unsigned { 20 } else { prec });
        c.numeric_scale = Some(0);
    };
    let decimal = |c: &mut SourceColumn, info: &ExactNumberInfo, unsigned: bool| {
        let (p, s) = match info {
            ExactNumberInfo::None => (10, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => (*p, (*s).max(0) as u64),
        };
        c.data_type = "decimal".into();
        c.column_type = format!("decimal({p},{s})");
        if unsigned {
            c.column_type.push_str(" unsigned");
        }
        c.numeric_precision = Some(p as u32);
        c.numeric_scale = Some(s as u32);
    };
    let float = |c: &mut SourceColumn, info: &ExactNumberInfo, double: bool, unsigned: bool| {
        let double = double || matches!(info, ExactNumberInfo::Precision(p) if *p > 24);
        let name = if double { "double" } else { "float" };
        c.data_type = name.into();
        match info {
            ExactNumberInfo::PrecisionAndScale(m, d) => {
                c.column_type = format!("{name}({m},{d})");
                c.numeric_precision = Some(*m as u32);
                c.numeric_scale = Some((*d).max(0) as u32);
            }
            _ => {
                c.column_type = name.into();
                c.numeric_precision = Some(if double { 22 } else { 12 });
            }
        }
        if unsigned {
            c.column_type.push_str(" unsigned");
        }
    };
    let time = |c: &mut SourceColumn, name: &str, p: &Option<u64>| {
        c.data_type = name.into();
        let p = p.unwrap_or(0);
        c.column_type = if p == 0 { name.into() } else { format!("{name}({p})") };
        c.datetime_precision = Some(p as u32);
    };
    let sized = |c: &mut SourceColumn, name: &str, n: u64| {
        c.data_type = name.into();
        c.column_type = format!("{name}({n})");
    };
    let char_len = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => Ok(*length),
        None => Ok(1),
        Some(CharacterLength::Max) => Err(unsupported(dt)),
    };
    let plain = |c: &mut SourceColumn, name: &str| {
        c.data_type = name.into();
        c.column_type = name.into();
    };
    match dt {
        DataType::TinyInt(w) => int(c, "tinyint", false, 3, *w),
        DataType::TinyIntUnsigned(w) => int(c, "tinyint", true, 3, *w),
        DataType::Bool | DataType::Boolean => int(c, "tinyint", false, 3, Some(1)),
        DataType::SmallInt(w) => int(c, "smallint", false, 5, *w),
        DataType::SmallIntUnsigned(w) => int(c, "smallint", true, 5, *w),
        DataType::MediumInt(w) => int(c, "mediumint", false, 7, *w),
        DataType::MediumIntUnsigned(w) => int(c, "mediumint", true, 7, *w),
        DataType::Int(w) | DataType::Integer(w) => int(c, "int", false, 10, *w),
        DataType::IntUnsigned(w) | DataType::IntegerUnsigned(w) => int(c, "int", true, 10, *w),
        DataType::BigInt(w) => int(c, "bigint", false, 19, *w),
        DataType::BigIntUnsigned(w) => int(c, "bigint", true, 19, *w),
        DataType::Zerofill(inner) => {
            type_of(inner, c, text, serial)?;
            if !c.unsigned() {
                c.column_type.push_str(" unsigned");
            }
            c.column_type.push_str(" zerofill");
        }
        DataType::Decimal(i) | DataType::Numeric(i) | DataType::Dec(i) => decimal(c, i, false),
        DataType::DecimalUnsigned(i) | DataType::DecUnsigned(i) => decimal(c, i, true),
        DataType::Float(i) => float(c, i, false, false),
        DataType::FloatUnsigned(i) => float(c, i, false, true),
        DataType::Double(i) => float(c, i, true, false),
        DataType::DoubleUnsigned(i) => float(c, i, true, true),
        DataType::DoublePrecision | DataType::Real => float(c, &ExactNumberInfo::None, true, false),
        DataType::DoublePrecisionUnsigned | DataType::RealUnsigned => float(c, &ExactNumberInfo::None, true, true),
        DataType::Bit(n) => {
            let n = n.unwrap_or(1);
            sized(c, "bit", n);
            c.numeric_precision = Some(n as u32);
        }
        DataType::Date => plain(c, "date"),
        DataType::Datetime(p) => time(c, "datetime", p),
        DataType::Timestamp(p, _) => time(c, "timestamp", p),
        DataType::Time(p, _) => time(c, "time", p),
        DataType::Char(l) | DataType::Character(l) => {
            sized(c, "char", char_len(l)?);
            *text = true;
        }
        DataType::Varchar(l) | DataType::CharacterVarying(l) | DataType::CharVarying(l) | DataType::Nvarchar(l) => {
            let Some(_) = l else {
                return Err("VARCHAR without a length".into());
            };
            sized(c, "varchar", char_len(l)?);
            *text = true;
        }
        DataType::Binary(n) => sized(c, "binary", n.unwrap_or(1)),
        DataType::Varbinary(Some(BinaryLength::IntegerLength { length })) => sized(c, "varbinary", *length),
        DataType::TinyText | DataType::Text | DataType::MediumText | DataType::LongText => {
            let name = match dt {
                DataType::TinyText => "tinytext",
                DataType::Text => "text",
                DataType::MediumText => "mediumtext",
                _ => "longtext",
            };
            plain(c, name);
            *text = true;
        }
        DataType::TinyBlob => plain(c, "tinyblob"),
        DataType::Blob(n) => plain(c, lob("blob", *n)),
        DataType::MediumBlob => plain(c, "mediumblob"),
        DataType::LongBlob => plain(c, "longblob"),
        DataType::Enum(members, _) => {
            let vals: Vec<String> = members
                .iter()
                .map(|m| match m {
                    EnumMember::Name(s) => s.clone(),
                    EnumMember::NamedValue(s, _) => s.clone(),
                })
                .collect();
            c.data_type = "enum".into();
            c.column_type = format!("enum({})", quote_values(&vals));
            *text = true;
        }
        DataType::Set(vals) => {
            c.data_type = "set".into();
            c.column_type = format!("set({})", quote_values(vals));
            *text = true;
        }
        DataType::JSON => plain(c, "json"),
        DataType::Uuid => plain(c, "uuid"),
        DataType::Custom(name, mods) => {
            let n = name.to_string().trim_matches('`').to_ascii_lowercase();
            let size = mods.first().and_then(|m| m.to_string().parse::<u64>().ok());
            match n.as_str() {
                "year" => plain(c, "year"),
                "serial" => {
                    int(c, "bigint", true, 19, None);
                    *serial = true;
                }
                "text" | "tinytext" | "mediumtext" | "longtext" => {
                    plain(c, lob("text", size));
                    *text = true;
                }
                "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon"
                | "geometrycollection" | "geomcollection" => plain(c, if n == "geomcollection" { "geomcollection" } else { &n }),
                "vector" => sized(c, "vector", size.unwrap_or(2048)),
                "uuid" | "inet4" | "inet6" => plain(c, &n),
                "fixed" => decimal(
                    c,
                    &match (mods.first().and_then(|m| m.to_string().parse().ok()), mods.get(1).and_then(|m| m.to_string().parse().ok())) {
                        (Some(p), Some(s)) => ExactNumberInfo::PrecisionAndScale(p, s),
                        (Some(p), None) => ExactNumberInfo::Precision(p),
                        _ => ExactNumberInfo::None,
                    },
                    false,
                ),
                _ => return Err(unsupported(dt)),
            }
        }
        _ => return Err(unsupported(dt)),
    }
    Ok(())
}

/// Removes MariaDB's column attribute `COMPRESSED` / `COMPRESSED=zlib` (an
/// unquoted `COMPRESSED` word not after `=`, so `ROW_FORMAT=COMPRESSED` and a
/// column named `` `compressed` `` stay).
fn without_compressed_attribute(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_compressed =
        |t: &TokenWithSpan| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("COMPRESSED"));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let after_eq = out.last().is_some_and(|t| t.token == Token::Eq);
        if is_compressed(&tokens[i]) && !after_eq {
            i += 1;
            // `COMPRESSED=zlib`: the method goes too.
            if tokens.get(i).is_some_and(|t| t.token == Token::Eq) && tokens.get(i + 1).is_some_and(|t| matches!(t.token, Token::Word(_))) {
                i += 2;
            }
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// `TEXT(n)` / `BLOB(n)`: the smallest type of the family holding `n` bytes.
fn lob(family: &str, n: Option<u64>) -> &'static str {
    let blob = family == "blob";
    match n {
        None => {
            if blob {
                "blob"
            } else {
                "text"
            }
        }
        Some(n) if n < 256 => {
            if blob {
                "tinyblob"
            } else {
                "tinytext"
            }
        }
        Some(n) if n < 65_536 => {
            if blob {
                "blob"
            } else {
                "text"
            }
        }
        Some(n) if n < 16_777_216 => {
            if blob {
                "mediumblob"
            } else {
                "mediumtext"
            }
        }
        Some(_) => {
            if blob {
                "longblob"
            } else {
                "longtext"
            }
        }
    }
}

impl fmt::Display for Incompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.table, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::types::{ChType, TableMapping};

    fn col(name: &str, dt: &str, ct: &str, nullable: bool) -> SourceColumn {
        let mut c = SourceColumn::new(name, dt, ct, nullable);
        match dt {
            "int" => (c.numeric_precision, c.numeric_scale) = (Some(10), Some(0)),
            "smallint" => (c.numeric_precision, c.numeric_scale) = (Some(5), Some(0)),
            "decimal" => (c.numeric_precision, c.numeric_scale) = (Some(10), Some(2)),
            "datetime" => c.datetime_precision = Some(3),
            "varchar" | "enum" | "char" => c.charset = Some("utf8mb4".into()),
            "text" => c.charset = Some("latin1".into()),
            _ => {}
        }
        c
    }

    /// `shop.orders` as discovery records it.
    fn orders() -> SourceTable {
        let mut columns = vec![
            col("id", "int", "int", false),
            col("name", "varchar", "varchar(100)", true),
            col("price", "decimal", "decimal(10,2)", false),
            col("status", "enum", "enum('new','paid')", false),
            col("created", "datetime", "datetime(3)", true),
            col("qty", "smallint", "smallint unsigned", true),
            col("note", "text", "text", true),
            col("code", "char", "char(4)", true),
        ];
        for (i, c) in columns.iter_mut().enumerate() {
            c.ordinal = i as u32 + 1;
        }
        SourceTable { id: TableId::new("shop", "orders"), columns, primary_key: vec!["id".into()], charset: Some("utf8mb4".into()) }
    }

    fn customers() -> SourceTable {
        let mut t = orders();
        t.id = TableId::new("shop", "customers");
        t
    }

    fn cs(_: &TableId) -> Option<String> {
        Some("utf8mb4".into())
    }

    fn run(sql: &str) -> Vec<Result<SchemaChange, Incompatible>> {
        apply("shop", sql, &[orders(), customers()], &cs).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The single `Altered` a statement produces.
    fn altered(sql: &str) -> (SourceTable, Vec<AlterOp>) {
        match run(sql).as_slice() {
            [Ok(SchemaChange::Altered { table, new, ops })] => {
                assert_eq!(table, &TableId::new("shop", "orders"));
                assert_eq!(&new.id, table);
                for (i, c) in new.columns.iter().enumerate() {
                    assert_eq!(c.ordinal, i as u32 + 1, "ordinals renumbered");
                }
                (new.clone(), ops.clone())
            }
            other => panic!("{sql}: expected one Altered, got {other:?}"),
        }
    }

    fn incompatible(sql: &str) -> String {
        match run(sql).as_slice() {
            [Err(Incompatible { table, reason })] => {
                assert_eq!(table, &TableId::new("shop", "orders"));
                assert!(reason.contains("resync table `shop`.`orders`"), "{reason}");
                reason.clone()
            }
            other => panic!("{sql}: expected one Incompatible, got {other:?}"),
        }
    }

    fn names(t: &SourceTable) -> Vec<&str> {
        t.columns.iter().map(|c| c.name.as_str()).collect()
    }

    fn add(name: &str, default: Option<&str>) -> AlterOp {
        AlterOp::AddColumn { name: name.into(), default: default.map(String::from) }
    }

    #[test]
    fn mariadb_types_and_compressed_columns() {
        let (t, _) = altered(
            "ALTER TABLE orders ADD u UUID, ADD i4 INET4 NOT NULL, ADD i6 INET6, ADD v VECTOR(3), ADD vc VARCHAR(20) COMPRESSED, \
             ADD tc TEXT COMPRESSED=zlib NOT NULL, ADD `compressed` INT, ROW_FORMAT=COMPRESSED",
        );
        let get = |n: &str| {
            let c = t.column(n).unwrap();
            (c.data_type.clone(), c.column_type.clone(), c.nullable)
        };
        assert_eq!(get("u"), ("uuid".into(), "uuid".into(), true));
        assert_eq!(get("i4"), ("inet4".into(), "inet4".into(), false));
        assert_eq!(get("i6"), ("inet6".into(), "inet6".into(), true));
        assert_eq!(get("v"), ("vector".into(), "vector(3)".into(), true));
        assert_eq!(get("vc"), ("varchar".into(), "varchar(20)".into(), true));
        assert_eq!(get("tc"), ("text".into(), "text".into(), false));
        assert_eq!(get("compressed").0, "int");
        let m = TableMapping::new(t.clone(), "orders".into());
        let ty = |n: &str| m.columns.iter().find(|c| c.name == n).unwrap().ch_type.clone();
        assert_eq!(ty("u"), ChType::Nullable(Box::new(ChType::Uuid)));
        assert_eq!(ty("i4"), ChType::IPv4);
    }

    #[test]
    fn add_columns_at_end_first_and_after() {
        let (t, ops) = altered(
            "ALTER TABLE orders ADD COLUMN c1 INT UNSIGNED NOT NULL DEFAULT 0 AFTER name, \
             ADD c0 VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci FIRST, ADD COLUMN c9 BIGINT",
        );
        assert_eq!(names(&t), ["c0", "id", "name", "c1", "price", "status", "created", "qty", "note", "code", "c9"]);
        assert_eq!(ops, vec![add("c1", Some("0")), add("c0", None), add("c9", None)]);
        let c1 = t.column("c1").unwrap();
        assert_eq!((c1.data_type.as_str(), c1.column_type.as_str(), c1.nullable), ("int", "int unsigned", false));
        assert_eq!((c1.numeric_precision, c1.numeric_scale, c1.charset.as_deref()), (Some(10), Some(0), None));
        let c0 = t.column("c0").unwrap();
        assert_eq!((c0.column_type.as_str(), c0.charset.as_deref(), c0.nullable), ("varchar(20)", Some("latin1"), true));
        let c9 = t.column("c9").unwrap();
        assert_eq!((c9.column_type.as_str(), c9.numeric_precision), ("bigint", Some(19)));
        // Mapped exactly as a discovered column.
        let m = TableMapping::new(t.clone(), "orders".into());
        let ty = |n: &str| m.columns.iter().find(|c| c.name == n).unwrap().ch_type.clone();
        assert_eq!(ty("c1"), ChType::UInt32);
        assert_eq!(ty("c0"), ChType::Nullable(Box::new(ChType::String)));
        assert_eq!(ty("c9"), ChType::Nullable(Box::new(ChType::Int64)));
    }

    #[test]
    fn new_columns_follow_information_schema_conventions() {
        let (t, _) = altered(
            "ALTER TABLE `shop`.`orders` ADD a TINYINT(1), ADD b TINYINT UNSIGNED, ADD c MEDIUMINT, ADD d BIGINT(20) UNSIGNED NOT NULL, \
             ADD e DECIMAL(12,3), ADD f NUMERIC(5), ADD g FLOAT, ADD h DOUBLE, ADD i REAL, ADD j DATETIME(6), ADD k TIMESTAMP(3) NULL, \
             ADD l TIME, ADD m DATE, ADD n YEAR, ADD o BIT(3), ADD p JSON, ADD q ENUM('a','it''s','b\\\\c') NOT NULL, ADD r SET('x','y'), \
             ADD s CHAR(3), ADD t TEXT, ADD u MEDIUMTEXT COLLATE utf8mb4_bin, ADD v VARBINARY(16), ADD w BINARY(4), ADD x LONGBLOB, \
             ADD y BOOL, ADD z VARCHAR(10) CHARACTER SET utf8, ADD aa INT NOT NULL DEFAULT -5, ADD ab DOUBLE(10,2), ADD ac GEOMETRY, \
             ADD ad SMALLINT UNSIGNED DEFAULT '7', ADD ae DECIMAL(10,2) NOT NULL DEFAULT '0.00', ADD af VARCHAR(5) CHARACTER SET binary",
        );
        let get = |n: &str| t.column(n).unwrap().clone();
        let check = |n: &str, dt: &str, ct: &str, p: Option<u32>, s: Option<u32>, dtp: Option<u32>, charset: Option<&str>| {
            let c = get(n);
            assert_eq!(
                (
                    c.data_type.as_str(),
                    c.column_type.as_str(),
                    c.numeric_precision,
                    c.numeric_scale,
                    c.datetime_precision,
                    c.charset.as_deref()
                ),
                (dt, ct, p, s, dtp, charset),
                "column {n}"
            );
        };
        check("a", "tinyint", "tinyint(1)", Some(3), Some(0), None, None);
        check("b", "tinyint", "tinyint unsigned", Some(3), Some(0), None, None);
        check("c", "mediumint", "mediumint", Some(7), Some(0), None, None);
        check("d", "bigint", "bigint unsigned", Some(20), Some(0), None, None);
        check("e", "decimal", "decimal(12,3)", Some(12), Some(3), None, None);
        check("f", "decimal", "decimal(5,0)", Some(5), Some(0), None, None);
        check("g", "float", "float", Some(12), None, None, None);
        check("h", "double", "double", Some(22), None, None, None);
        check("i", "double", "double", Some(22), None, None, None);
        check("j", "datetime", "datetime(6)", None, None, Some(6), None);
        check("k", "timestamp", "timestamp(3)", None, None, Some(3), None);
        check("l", "time", "time", None, None, Some(0), None);
        check("m", "date", "date", None, None, None, None);
        check("n", "year", "year", None, None, None, None);
        check("o", "bit", "bit(3)", Some(3), None, None, None);
        check("p", "json", "json", None, None, None, None);
        check("q", "enum", "enum('a','it''s','b\\\\c')", None, None, None, Some("utf8mb4"));
        assert_eq!(get("q").enum_values(), ["a", "it's", "b\\c"]);
        check("r", "set", "set('x','y')", None, None, None, Some("utf8mb4"));
        check("s", "char", "char(3)", None, None, None, Some("utf8mb4"));
        check("t", "text", "text", None, None, None, Some("utf8mb4"));
        check("u", "mediumtext", "mediumtext", None, None, None, Some("utf8mb4"));
        check("v", "varbinary", "varbinary(16)", None, None, None, None);
        check("w", "binary", "binary(4)", None, None, None, None);
        check("x", "longblob", "longblob", None, None, None, None);
        check("y", "tinyint", "tinyint(1)", Some(3), Some(0), None, None);
        check("z", "varchar", "varchar(10)", None, None, None, Some("utf8mb3"));
        check("ab", "double", "double(10,2)", Some(10), Some(2), None, None);
        check("ac", "geometry", "geometry", None, None, None, None);
        check("af", "varbinary", "varbinary(5)", None, None, None, None);
        assert!(!get("q").nullable && get("a").nullable);
        let m = TableMapping::new(t.clone(), "orders".into());
        let ty = |n: &str| m.columns.iter().find(|c| c.name == n).unwrap().ch_type.sql();
        assert_eq!(ty("e"), "Nullable(Decimal(12, 3))");
        assert_eq!(ty("j"), "Nullable(DateTime64(6, 'UTC'))");
        assert_eq!(ty("aa"), "Int32");
        assert_eq!(ty("ae"), "Decimal(10, 2)");
    }

    #[test]
    fn defaults_for_existing_rows() {
        let (_, ops) = altered(
            "ALTER TABLE orders ADD a INT NOT NULL DEFAULT -5, ADD b VARCHAR(5) NOT NULL DEFAULT '', ADD c DECIMAL(10,2) DEFAULT '0.00', \
             ADD d DATETIME DEFAULT '2020-01-01 00:00:00', ADD e ENUM('x','y') NOT NULL, ADD f INT DEFAULT NULL, ADD g BOOL DEFAULT TRUE, \
             ADD h DATE NOT NULL DEFAULT '0000-00-00', ADD i VARCHAR(3) DEFAULT \"q\"",
        );
        let d: Vec<Option<&str>> = ops
            .iter()
            .map(|o| match o {
                AlterOp::AddColumn { default, .. } => default.as_deref(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(d, [Some("-5"), Some(""), Some("0.00"), Some("2020-01-01 00:00:00"), Some("x"), None, Some("1"), None, Some("q")]);
        // Values MySQL computes for existing rows cannot be followed.
        assert!(incompatible("ALTER TABLE orders ADD ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)").contains("DEFAULT"));
        assert!(incompatible("ALTER TABLE orders ADD v INT AS (id + 1) VIRTUAL").contains("generated"));
        assert!(incompatible("ALTER TABLE orders ADD w INT GENERATED ALWAYS AS (id * 2) STORED").contains("generated"));
        assert!(incompatible("ALTER TABLE orders ADD x INT DEFAULT (id + 1)").contains("DEFAULT"));
    }

    #[test]
    fn table_default_charset_applies_to_text_columns() {
        let latin = |_: &TableId| Some("latin1".to_string());
        let latin_orders = SourceTable { charset: Some("latin1".into()), ..orders() };
        let r = apply(
            "shop",
            "ALTER TABLE orders ADD c VARCHAR(3), ADD d VARCHAR(3) COLLATE utf8mb4_unicode_ci, ADD e INT",
            std::slice::from_ref(&latin_orders),
            &cs,
        )
        .unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("c").unwrap().charset.as_deref(), Some("latin1"));
        assert_eq!(new.column("d").unwrap().charset.as_deref(), Some("utf8mb4"));
        assert_eq!(new.column("e").unwrap().charset, None);
        // MODIFY without CHARACTER SET takes the table default too (MySQL redefines the column).
        let r = apply("shop", "ALTER TABLE orders MODIFY note MEDIUMTEXT", std::slice::from_ref(&latin_orders), &cs).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("note").unwrap().charset.as_deref(), Some("latin1"));
        // A definition recorded before table charsets were kept asks the fallback.
        let legacy = SourceTable { charset: None, ..orders() };
        let r = apply("shop", "ALTER TABLE orders ADD c VARCHAR(3)", &[legacy], &latin).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("c").unwrap().charset.as_deref(), Some("latin1"));
        assert!(matches!(&r[0], Ok(SchemaChange::Altered { .. })), "{r:?}");
    }

    #[test]
    fn table_default_charset_comes_from_the_record_and_the_statement() {
        // The recorded charset wins over the fallback (which stands for the present catalog).
        let present = |_: &TableId| Some("koi8r".to_string());
        let latin_orders = SourceTable { charset: Some("latin1".into()), ..orders() };
        let r = apply("shop", "ALTER TABLE orders ADD c VARCHAR(3)", std::slice::from_ref(&latin_orders), &present).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("c").unwrap().charset.as_deref(), Some("latin1"));
        assert_eq!(new.charset.as_deref(), Some("latin1"));
        // The fallback only serves a record without a charset.
        let legacy = SourceTable { charset: None, ..orders() };
        let r = apply("shop", "ALTER TABLE orders ADD c VARCHAR(3)", &[legacy], &present).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("c").unwrap().charset.as_deref(), Some("koi8r"));
        // A table option alone changes the recorded default, with no column step.
        for sql in [
            "ALTER TABLE orders DEFAULT CHARSET=latin2",
            "ALTER TABLE orders CHARACTER SET latin2",
            "ALTER TABLE orders ENGINE=InnoDB DEFAULT CHARACTER SET = latin2 COLLATE latin2_general_ci",
            "ALTER TABLE orders COLLATE = 'latin2_bin', ALGORITHM=INPLACE",
        ] {
            let r = apply("shop", sql, std::slice::from_ref(&latin_orders), &present).unwrap();
            match r.as_slice() {
                [Ok(SchemaChange::Altered { new, ops, .. })] => {
                    assert_eq!(new.charset.as_deref(), Some("latin2"), "{sql}");
                    assert!(ops.is_empty(), "{sql}: {ops:?}");
                    assert_eq!(new.columns, latin_orders.columns, "{sql}");
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        // The same default again is no change.
        assert!(apply("shop", "ALTER TABLE orders DEFAULT CHARSET latin1", std::slice::from_ref(&latin_orders), &present)
            .unwrap()
            .is_empty());
        // DEFAULT (the database's, not named) is recorded as unknown: a column added later
        // takes what the source says then (the fallback), not the old recorded default.
        for sql in ["ALTER TABLE orders CHARACTER SET DEFAULT", "ALTER TABLE orders DEFAULT CHARSET = DEFAULT, ALGORITHM=INPLACE"] {
            let r = apply("shop", sql, std::slice::from_ref(&latin_orders), &present).unwrap();
            let [Ok(SchemaChange::Altered { new: after, ops, .. })] = r.as_slice() else { panic!("{sql}: {r:?}") };
            assert_eq!((after.charset.as_deref(), ops.len()), (None, 0), "{sql}");
            assert!(apply("shop", sql, std::slice::from_ref(after), &present).unwrap().is_empty(), "{sql} again: no change");
            let r = apply("shop", "ALTER TABLE orders ADD e VARCHAR(5)", std::slice::from_ref(after), &present).unwrap();
            let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
            assert_eq!(new.column("e").unwrap().charset.as_deref(), Some("koi8r"), "{sql}");
        }
        // A column added by the same statement takes what the source says too.
        let r =
            apply("shop", "ALTER TABLE orders ADD f TEXT, CHARACTER SET DEFAULT", std::slice::from_ref(&latin_orders), &present).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!((new.column("f").unwrap().charset.as_deref(), new.charset.as_deref()), (Some("koi8r"), None));
        // A column added in the same statement takes the new default; one with its own charset keeps it.
        let r = apply(
            "shop",
            "ALTER TABLE orders ADD c TEXT, ADD d TEXT CHARACTER SET utf8mb4, DEFAULT CHARSET=cp1251",
            std::slice::from_ref(&latin_orders),
            &present,
        )
        .unwrap();
        let Ok(SchemaChange::Altered { new, ops, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.charset.as_deref(), Some("cp1251"));
        assert_eq!(new.column("c").unwrap().charset.as_deref(), Some("cp1251"));
        assert_eq!(new.column("d").unwrap().charset.as_deref(), Some("utf8mb4"));
        assert_eq!(ops.len(), 2);
        // Statement order: a change of default, then a column added by a later statement.
        let r = apply("shop", "ALTER TABLE orders DEFAULT CHARSET=latin2", std::slice::from_ref(&latin_orders), &present).unwrap();
        let Ok(SchemaChange::Altered { new: after, .. }) = &r[0] else { panic!("{r:?}") };
        let r = apply("shop", "ALTER TABLE orders ADD e VARCHAR(5)", std::slice::from_ref(after), &present).unwrap();
        let Ok(SchemaChange::Altered { new, .. }) = &r[0] else { panic!("{r:?}") };
        assert_eq!(new.column("e").unwrap().charset.as_deref(), Some("latin2"));
        // CONVERT TO CHARACTER SET still needs a resync.
        assert!(incompatible("ALTER TABLE orders CONVERT TO CHARACTER SET latin1").contains("CONVERT"));
    }

    #[test]
    fn drop_rename_change_modify_in_order() {
        let (t, ops) = altered(
            "ALTER TABLE orders DROP COLUMN note, DROP code, RENAME COLUMN name TO title, \
             CHANGE COLUMN qty quantity INT UNSIGNED, MODIFY price DECIMAL(12,2) NOT NULL AFTER id, MODIFY COLUMN Status ENUM('new','paid','shipped') NOT NULL",
        );
        assert_eq!(names(&t), ["id", "price", "title", "status", "created", "quantity"]);
        assert_eq!(
            ops,
            vec![
                AlterOp::DropColumn { name: "note".into() },
                AlterOp::DropColumn { name: "code".into() },
                AlterOp::RenameColumn { from: "name".into(), to: "title".into() },
                AlterOp::ModifyColumn { old_name: "qty".into(), new_name: "quantity".into() },
                AlterOp::ModifyColumn { old_name: "price".into(), new_name: "price".into() },
                AlterOp::ModifyColumn { old_name: "status".into(), new_name: "status".into() },
            ]
        );
        assert_eq!(t.column("quantity").unwrap().column_type, "int unsigned");
        assert_eq!(t.column("price").unwrap().numeric_precision, Some(12));
        assert_eq!(t.column("status").unwrap().enum_values(), ["new", "paid", "shipped"]);
        assert_eq!(t.primary_key, ["id"]);
    }

    #[test]
    fn widening_is_compatible() {
        for sql in [
            "ALTER TABLE orders MODIFY qty MEDIUMINT UNSIGNED",
            "ALTER TABLE orders MODIFY qty INT UNSIGNED",
            "ALTER TABLE orders MODIFY qty BIGINT UNSIGNED",
            "ALTER TABLE orders MODIFY name VARCHAR(200)",
            "ALTER TABLE orders MODIFY name TEXT",
            "ALTER TABLE orders MODIFY code VARCHAR(4)",
            "ALTER TABLE orders MODIFY code CHAR(10)",
            "ALTER TABLE orders MODIFY note MEDIUMTEXT CHARACTER SET latin1",
            "ALTER TABLE orders MODIFY note LONGTEXT CHARACTER SET utf8mb4",
            "ALTER TABLE orders MODIFY price DECIMAL(12,2) NOT NULL",
            "ALTER TABLE orders MODIFY price DECIMAL(10,2)",
            "ALTER TABLE orders MODIFY created DATETIME(6)",
            "ALTER TABLE orders MODIFY status ENUM('new','paid','refunded') NOT NULL",
            "ALTER TABLE orders CHANGE created created_at DATETIME(3)",
            "ALTER TABLE orders MODIFY id INT NOT NULL AUTO_INCREMENT",
        ] {
            let (t, _) = altered(sql);
            assert_eq!(t.primary_key, ["id"], "{sql}");
            assert!(!t.column("id").unwrap().nullable, "{sql}");
        }
        // The same definition again changes nothing.
        assert_eq!(run("ALTER TABLE orders MODIFY id INT, MODIFY name VARCHAR(100) NULL"), vec![]);
        // NOT NULL → NULL
        let (t, _) = altered("ALTER TABLE orders MODIFY price DECIMAL(10,2) NULL");
        assert!(t.column("price").unwrap().nullable);
    }

    #[test]
    fn float_to_double_and_int_chain() {
        let mut t = orders();
        t.columns.push(SourceColumn {
            name: "w".into(),
            ordinal: 9,
            data_type: "float".into(),
            column_type: "float".into(),
            nullable: true,
            numeric_precision: Some(12),
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        });
        t.columns.push(SourceColumn {
            name: "s".into(),
            ordinal: 10,
            data_type: "tinyint".into(),
            column_type: "tinyint".into(),
            nullable: true,
            numeric_precision: Some(3),
            numeric_scale: Some(0),
            datetime_precision: None,
            charset: None,
            extra: String::new(),
        });
        let r = apply("shop", "ALTER TABLE orders MODIFY w DOUBLE, MODIFY s SMALLINT", &[t.clone()], &cs).unwrap();
        assert!(matches!(r.as_slice(), [Ok(SchemaChange::Altered { .. })]), "{r:?}");
        let r = apply("shop", "ALTER TABLE orders MODIFY w FLOAT(7,3)", &[t.clone()], &cs).unwrap();
        assert!(matches!(r.as_slice(), [Err(_)]), "float → float(7,3) narrows: {r:?}");
        let r = apply("shop", "ALTER TABLE orders MODIFY s TINYINT UNSIGNED", &[t], &cs).unwrap();
        assert!(matches!(r.as_slice(), [Err(i)] if i.reason.contains("signedness")), "{r:?}");
    }

    #[test]
    fn narrowing_and_family_changes_are_incompatible() {
        let cases = [
            ("ALTER TABLE orders MODIFY qty TINYINT UNSIGNED", "column qty: smallint unsigned → tinyint unsigned narrows"),
            ("ALTER TABLE orders MODIFY qty SMALLINT", "signedness"),
            ("ALTER TABLE orders MODIFY qty INT", "signedness"),
            (
                "ALTER TABLE orders MODIFY name VARCHAR(50)",
                "varchar(100) character set utf8mb4 → varchar(50) character set utf8mb4 narrows the length",
            ),
            ("ALTER TABLE orders MODIFY price DECIMAL(9,2) NOT NULL", "decimal(10,2) not null → decimal(9,2) not null"),
            ("ALTER TABLE orders MODIFY price DECIMAL(12,4) NOT NULL", "scale"),
            ("ALTER TABLE orders MODIFY created DATETIME", "fractional"),
            ("ALTER TABLE orders MODIFY created TIMESTAMP(3)", "type family"),
            ("ALTER TABLE orders MODIFY status ENUM('paid','new') NOT NULL", "appending"),
            ("ALTER TABLE orders MODIFY name VARCHAR(100) NOT NULL", "NOT NULL"),
            ("ALTER TABLE orders MODIFY note TINYTEXT CHARACTER SET latin1", "narrows the text type"),
            ("ALTER TABLE orders MODIFY note TEXT CHARACTER SET ascii", "character set"),
            ("ALTER TABLE orders MODIFY price DOUBLE NOT NULL", "type family"),
            ("ALTER TABLE orders MODIFY name INT", "type family"),
            ("ALTER TABLE orders MODIFY id BIGINT", "primary-key column"),
            ("ALTER TABLE orders CHANGE id order_id INT", "primary-key column id"),
            ("ALTER TABLE orders RENAME COLUMN id TO oid", "primary-key column id"),
            ("ALTER TABLE orders DROP COLUMN id", "primary-key column"),
            ("ALTER TABLE orders DROP PRIMARY KEY", "primary key (id)"),
            ("ALTER TABLE orders DROP PRIMARY KEY, ADD PRIMARY KEY (id, name)", "primary key"),
            ("ALTER TABLE orders ADD CONSTRAINT pk PRIMARY KEY (id)", "ADD PRIMARY KEY (id)"),
            ("ALTER TABLE orders ADD COLUMN id2 INT NOT NULL AUTO_INCREMENT PRIMARY KEY", "primary key"),
            ("ALTER TABLE orders DROP CONSTRAINT `PRIMARY`", "primary key"),
            ("ALTER TABLE orders CONVERT TO CHARACTER SET utf8mb4", "CONVERT TO CHARACTER SET"),
            ("ALTER TABLE orders TRUNCATE PARTITION p0", "TRUNCATE PARTITION"),
            ("ALTER TABLE orders DROP PARTITION p0, ADD c INT", "DROP PARTITION"),
        ];
        for (sql, want) in cases {
            let reason = incompatible(sql);
            assert!(reason.contains(want), "{sql}: {reason}");
        }
    }

    #[test]
    fn mysql_only_clauses_and_options() {
        let (t, _) = altered("ALTER TABLE orders ADD COLUMN c INT, ALGORITHM=INPLACE, LOCK=NONE");
        assert!(t.column("c").is_some());
        let (t, _) = altered("ALTER ONLINE TABLE orders ADD c INT, ALGORITHM = INSTANT;");
        assert!(t.column("c").is_some());
        let (t, _) = altered(
            "ALTER TABLE orders ADD INDEX idx (name), ADD UNIQUE KEY u (code), DROP INDEX old_idx, DROP KEY k3, \
             ADD c VARCHAR(10) CHARSET latin1, ADD FULLTEXT INDEX ft (note), RENAME INDEX a TO b, ENGINE=InnoDB, AUTO_INCREMENT=5, \
             COMMENT='x', ADD CONSTRAINT fk FOREIGN KEY (qty) REFERENCES t (id), DROP FOREIGN KEY fk2, DROP CHECK chk, \
             ALTER COLUMN name SET DEFAULT 'x', ROW_FORMAT=DYNAMIC DEFAULT CHARSET=utf8mb4",
        );
        assert_eq!(t.column("c").unwrap().charset.as_deref(), Some("latin1"));
        // Only no-op clauses: nothing to report.
        for sql in [
            "ALTER TABLE orders ENGINE=InnoDB",
            "ALTER TABLE orders FORCE",
            "ALTER TABLE orders ADD INDEX i (name), ALGORITHM=INPLACE, LOCK=NONE",
            "ALTER TABLE orders DEFAULT CHARSET = utf8mb4",
            "ALTER TABLE orders ALTER COLUMN name DROP DEFAULT",
            "ALTER TABLE orders PARTITION BY HASH(id) PARTITIONS 4",
            "ALTER TABLE orders MODIFY name VARCHAR(100)",
        ] {
            assert_eq!(run(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn mariadb_if_exists_forms() {
        let (t, ops) = altered("ALTER TABLE orders ADD COLUMN IF NOT EXISTS c INT, ADD COLUMN IF NOT EXISTS name VARCHAR(5)");
        assert_eq!(ops, vec![add("c", None)]);
        assert_eq!(t.column("name").unwrap().column_type, "varchar(100)");
        let (_, ops) = altered("ALTER TABLE orders DROP COLUMN IF EXISTS nope, DROP COLUMN IF EXISTS note");
        assert_eq!(ops, vec![AlterOp::DropColumn { name: "note".into() }]);
        let (_, ops) = altered("ALTER TABLE orders MODIFY COLUMN IF EXISTS nope INT, MODIFY IF EXISTS name VARCHAR(120)");
        assert_eq!(ops, vec![AlterOp::ModifyColumn { old_name: "name".into(), new_name: "name".into() }]);
        let (_, ops) = altered("ALTER TABLE orders CHANGE COLUMN IF EXISTS name title VARCHAR(100)");
        assert_eq!(ops, vec![AlterOp::ModifyColumn { old_name: "name".into(), new_name: "title".into() }]);
        let (t, _) = altered("ALTER TABLE orders WAIT 5 ADD c INT");
        assert!(t.column("c").is_some());
        assert_eq!(run("ALTER TABLE orders NOWAIT ENGINE=InnoDB"), vec![]);
    }

    #[test]
    fn comments_and_quoted_names() {
        let (t, _) = altered("/* gh-ost */ ALTER TABLE `shop`.`orders` /* x */ ADD COLUMN `weird col.ü` INT -- trailing\n");
        assert!(t.column("weird col.ü").is_some());
        let odd = SourceTable { id: TableId::new("my db", "tbl.with dots ü"), ..orders() };
        let r = apply("other", "ALTER TABLE `my db`.`tbl.with dots ü` ADD `ä b` INT", std::slice::from_ref(&odd), &cs).unwrap();
        let [Ok(SchemaChange::Altered { table, new, .. })] = r.as_slice() else { panic!("{r:?}") };
        assert_eq!(table, &odd.id);
        assert!(new.column("ä b").is_some());
        // Column names are case-insensitive, as in MySQL.
        let (t, ops) = altered("ALTER TABLE orders DROP COLUMN NOTE");
        assert!(t.column("note").is_none());
        assert_eq!(ops, vec![AlterOp::DropColumn { name: "note".into() }]);
    }

    #[test]
    fn default_schema_and_untracked_tables() {
        // Unqualified names resolve in the event's database.
        let r = apply("crm", "ALTER TABLE orders ADD c INT", &[orders()], &cs).unwrap();
        assert_eq!(r, vec![]);
        let r = apply("crm", "ALTER TABLE shop.orders ADD c INT", &[orders()], &cs).unwrap();
        assert_eq!(r.len(), 1);
        // Shadow tables and other tables produce nothing, whatever their syntax.
        for sql in [
            "ALTER TABLE _orders_gho ADD COLUMN c INT, ENGINE=InnoDB",
            "CREATE TABLE _orders_gho LIKE orders",
            "ALTER TABLE `_orders_new` ADD x INT, ALGORITHM=COPY",
            "ALTER TABLE other WEIRD SYNTAX (((",
            "DROP TABLE IF EXISTS _orders_del",
            "TRUNCATE TABLE other",
            "RENAME TABLE a TO b",
        ] {
            assert_eq!(run(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn not_table_ddl_is_ignored() {
        for sql in [
            "CREATE USER 'u'@'%' IDENTIFIED BY 'p'",
            "GRANT SELECT ON shop.* TO 'u'@'%'",
            "CREATE DATABASE orders",
            "DROP DATABASE IF EXISTS orders",
            "ANALYZE TABLE orders",
            "OPTIMIZE TABLE orders",
            "BEGIN",
            "FLUSH TABLES orders",
            "CREATE INDEX i ON orders (name)",
            "DROP INDEX i ON orders",
            "DROP TEMPORARY TABLE IF EXISTS orders",
            "CREATE TEMPORARY TABLE orders (a INT)",
            "/*!40000 ALTER TABLE `orders` DISABLE KEYS */",
            "INSERT INTO orders VALUES (1)",
            "CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY)",
            "ALTER VIEW v AS SELECT * FROM orders",
            "",
        ] {
            assert_eq!(run(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn unparseable_statements_are_errors() {
        for (sql, want) in [
            ("ALTER TABLE orders ADD COLUMN (a INT, b INT)", "ADD COLUMN (col, ...)"),
            ("ALTER TABLE orders ADD c NATIONAL CHAR(3)", "Expected"),
            ("ALTER TABLE orders ADD c INT BOGUS", "Expected"),
            ("ALTER TABLE orders ADD c 'unterminated", "Unterminated"),
            ("ALTER TABLE orders ADD c CHAR(3) BINARY", "Expected"),
        ] {
            let e = apply("shop", sql, &[orders()], &cs).unwrap_err();
            assert!(e.message.contains(want), "{sql}: {e}");
            assert_eq!(e.statement, sql);
            assert!(e.to_string().contains(sql));
        }
    }

    #[test]
    fn truncate_drop_rename() {
        let o = TableId::new("shop", "orders");
        let c = TableId::new("shop", "customers");
        assert_eq!(run("TRUNCATE TABLE orders"), vec![Ok(SchemaChange::Truncated { table: o.clone() })]);
        assert_eq!(run("TRUNCATE shop.orders"), vec![Ok(SchemaChange::Truncated { table: o.clone() })]);
        assert_eq!(
            run("DROP TABLE IF EXISTS `orders`, other, shop.customers /* generated by server */"),
            vec![Ok(SchemaChange::Dropped { table: o.clone() }), Ok(SchemaChange::Dropped { table: c.clone() })]
        );
        let o2 = TableId::new("shop", "orders_2024");
        assert_eq!(run("RENAME TABLE orders TO orders_2024"), vec![Ok(SchemaChange::Renamed { from: o.clone(), to: o2.clone() })]);
        assert_eq!(run("ALTER TABLE orders RENAME TO orders_2024"), vec![Ok(SchemaChange::Renamed { from: o.clone(), to: o2.clone() })]);
        assert_eq!(run("ALTER TABLE orders RENAME AS orders_2024"), vec![Ok(SchemaChange::Renamed { from: o.clone(), to: o2.clone() })]);
        assert_eq!(run("ALTER TABLE orders RENAME orders_2024"), vec![Ok(SchemaChange::Renamed { from: o.clone(), to: o2.clone() })]);
        let archive = TableId::new("archive", "o");
        assert_eq!(
            run("RENAME TABLE shop.orders TO archive.o, customers TO clients"),
            vec![
                Ok(SchemaChange::Renamed { from: o.clone(), to: archive }),
                Ok(SchemaChange::Renamed { from: c.clone(), to: TableId::new("shop", "clients") }),
            ]
        );
        // ALTER with columns and a rename: Altered under the old name, then Renamed.
        let r = run("ALTER TABLE orders ADD c INT, RENAME TO orders_2024");
        assert!(matches!(&r[0], Ok(SchemaChange::Altered { table, .. }) if table == &o), "{r:?}");
        assert_eq!(r[1], Ok(SchemaChange::Renamed { from: o.clone(), to: o2 }));
    }

    #[test]
    fn online_schema_change_cut_over() {
        let o = TableId::new("shop", "orders");
        let del = TableId::new("shop", "_orders_del");
        let gho = TableId::new("shop", "_orders_gho");
        // gh-ost
        assert_eq!(
            run("RENAME TABLE `shop`.`orders` TO `shop`.`_orders_del`, `shop`.`_orders_gho` TO `shop`.`orders`"),
            vec![
                Ok(SchemaChange::Renamed { from: o.clone(), to: del.clone() }),
                Ok(SchemaChange::Replaced { table: o.clone(), by: Some(gho.clone()) }),
            ]
        );
        // pt-online-schema-change
        assert_eq!(
            run("RENAME TABLE `shop`.`orders` TO `shop`.`_orders_old`, `shop`.`_orders_new` TO `shop`.`orders`"),
            vec![
                Ok(SchemaChange::Renamed { from: o.clone(), to: TableId::new("shop", "_orders_old") }),
                Ok(SchemaChange::Replaced { table: o.clone(), by: Some(TableId::new("shop", "_orders_new")) }),
            ]
        );
        // Swapping two tracked tables: each name now holds the other table.
        let c = TableId::new("shop", "customers");
        let tmp = TableId::new("shop", "tmp");
        assert_eq!(
            run("RENAME TABLE orders TO tmp, customers TO orders, tmp TO customers"),
            vec![
                Ok(SchemaChange::Renamed { from: o.clone(), to: tmp.clone() }),
                Ok(SchemaChange::Renamed { from: c.clone(), to: o.clone() }),
                Ok(SchemaChange::Replaced { table: o.clone(), by: Some(c.clone()) }),
                Ok(SchemaChange::Renamed { from: tmp.clone(), to: c.clone() }),
                Ok(SchemaChange::Replaced { table: c.clone(), by: Some(tmp) }),
            ]
        );
        // A round trip is only renames.
        assert_eq!(
            run("RENAME TABLE orders TO x, x TO orders"),
            vec![
                Ok(SchemaChange::Renamed { from: o.clone(), to: TableId::new("shop", "x") }),
                Ok(SchemaChange::Renamed { from: TableId::new("shop", "x"), to: o.clone() }),
            ]
        );
        // Untracked table renamed onto a tracked name that was dropped before.
        let r = apply("shop", "ALTER TABLE _orders_gho RENAME TO orders", &[orders()], &cs).unwrap();
        assert_eq!(r, vec![Ok(SchemaChange::Replaced { table: o.clone(), by: Some(gho) })]);
        // MariaDB CREATE OR REPLACE, and CREATE of a tracked name.
        assert_eq!(
            run("CREATE OR REPLACE TABLE orders (id INT PRIMARY KEY)"),
            vec![Ok(SchemaChange::Replaced { table: o.clone(), by: None })]
        );
        assert_eq!(
            run("DROP TABLE orders; CREATE TABLE orders (id BIGINT PRIMARY KEY)"),
            vec![Ok(SchemaChange::Dropped { table: o.clone() }), Ok(SchemaChange::Replaced { table: o, by: None })]
        );
    }
}
