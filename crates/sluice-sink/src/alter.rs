//! Turns the column steps of a source `ALTER TABLE` into the ClickHouse `ALTER TABLE`
//! statements that give the destination table the new mapping's columns.
//!
//! Pure: builds SQL text, runs nothing. The caller has already decided that
//! the change can be followed in place (`sluice_source::ddl` reports the
//! others as incompatible, for a resync); a type change ClickHouse cannot
//! convert safely (see [`can_convert`]) yields no `MODIFY COLUMN`.
//!
//! - `ADD COLUMN` gets an explicit position (`AFTER x` / `FIRST`), so the
//!   `_peerdb_*` metadata columns stay last, and a `DEFAULT` equal to the value
//!   MySQL gave the existing rows (`AlterOp::AddColumn::default`), or the type's
//!   zero value for a column that is not `Nullable`, so the rows already in
//!   ClickHouse read as they do in MySQL.
//! - `DROP COLUMN` and `RENAME COLUMN` follow the steps in order.
//! - `MODIFY COLUMN c <type>` comes last, once per column whose ClickHouse type
//!   changed, under its final name.

use crate::{escape_literal, quote};
use sluice_core::schema::AlterOp;
use sluice_core::types::{ChType, TableMapping};

/// The ClickHouse statements replaying `ops` on `qualified_table` (already quoted,
/// e.g. from `ClickHouseSink::qualified`), whose columns are `old`'s, so that it
/// ends with `new`'s columns.
pub fn alter_statements(qualified_table: &str, old: &TableMapping, new: &TableMapping, ops: &[AlterOp]) -> Vec<String> {
    let initial: Vec<Col> =
        old.columns.iter().map(|c| Col { name: c.name.clone(), old_type: Some(c.ch_type.clone()), alive: true }).collect();

    // Pass 1: where every column ends up (its final name), and which column each op is about.
    let mut cols = initial.clone();
    let mut targets: Vec<Option<usize>> = Vec::with_capacity(ops.len());
    for op in ops {
        let target = match op {
            AlterOp::AddColumn { name, .. } => {
                cols.push(Col { name: name.clone(), old_type: None, alive: true });
                Some(cols.len() - 1)
            }
            AlterOp::DropColumn { name } => {
                let i = live(&cols, name);
                if let Some(i) = i {
                    cols[i].alive = false;
                }
                i
            }
            AlterOp::RenameColumn { from, to } | AlterOp::ModifyColumn { old_name: from, new_name: to } => {
                let i = live(&cols, from);
                if let Some(i) = i {
                    cols[i].name = to.clone();
                }
                i
            }
        };
        targets.push(target);
    }
    let final_names: Vec<Option<String>> = cols.iter().map(|c| c.alive.then(|| c.name.clone())).collect();
    let new_type = |k: usize| -> Option<&ChType> {
        let name = final_names[k].as_ref()?;
        new.columns.iter().find(|c| &c.name == name).map(|c| &c.ch_type)
    };

    // Pass 2: the statements, with the names current at each step.
    let mut out = Vec::new();
    let alter = |s: String| format!("ALTER TABLE {qualified_table} {s}");
    let mut cols = initial;
    // Added columns that never reach the new mapping (added and dropped again) are skipped.
    let mut skipped = vec![false; final_names.len()];
    for (op, target) in ops.iter().zip(targets) {
        let Some(k) = target else { continue };
        match op {
            AlterOp::AddColumn { name, default } => {
                cols.push(Col { name: name.clone(), old_type: None, alive: true });
                let Some(ty) = new_type(k) else {
                    skipped[k] = true;
                    continue;
                };
                let mut s = format!("ADD COLUMN IF NOT EXISTS {} {}", quote(name), ty.sql());
                match default {
                    Some(v) => s.push_str(&format!(" DEFAULT '{}'", escape_literal(v))),
                    None if !ty.is_nullable() => s.push_str(&format!(" DEFAULT {}", zero(ty))),
                    None => {}
                }
                // After the nearest column that precedes it in the new mapping and exists now.
                let pos = new.columns.iter().position(|c| Some(&c.name) == final_names[k].as_ref()).unwrap_or(0);
                let after = new.columns[..pos].iter().rev().find_map(|c| {
                    (0..cols.len()).find(|&j| j != k && cols[j].alive && !skipped[j] && final_names[j].as_ref() == Some(&c.name))
                });
                match after {
                    Some(j) => s.push_str(&format!(" AFTER {}", quote(&cols[j].name))),
                    None => s.push_str(" FIRST"),
                }
                out.push(alter(s));
            }
            AlterOp::DropColumn { .. } => {
                cols[k].alive = false;
                if !skipped[k] {
                    out.push(alter(format!("DROP COLUMN IF EXISTS {}", quote(&cols[k].name))));
                }
            }
            AlterOp::RenameColumn { to, .. } | AlterOp::ModifyColumn { new_name: to, .. } => {
                if cols[k].name != *to {
                    if !skipped[k] {
                        out.push(alter(format!("RENAME COLUMN IF EXISTS {} TO {}", quote(&cols[k].name), quote(to))));
                    }
                    cols[k].name = to.clone();
                }
            }
        }
    }
    for (k, c) in cols.iter().enumerate() {
        let (Some(from), Some(to)) = (&c.old_type, new_type(k)) else { continue };
        if c.alive && from != to && can_convert(from, to) {
            out.push(alter(format!("MODIFY COLUMN {} {}", quote(&c.name), to.sql())));
        }
    }
    out
}

/// A column through the statement: its current name, its ClickHouse type
/// before the statement (None for added ones) and whether it still exists.
#[derive(Clone)]
struct Col {
    name: String,
    old_type: Option<ChType>,
    alive: bool,
}

/// Index of the existing column named `name`.
fn live(cols: &[Col], name: &str) -> Option<usize> {
    cols.iter().position(|c| c.alive && c.name == name)
}

/// The default of a column that is not `Nullable`: ClickHouse's zero value of the type.
fn zero(t: &ChType) -> &'static str {
    match t {
        ChType::String => "''",
        ChType::Date32 => "'1970-01-01'",
        ChType::DateTime64 { .. } => "'1970-01-01 00:00:00'",
        _ => "0",
    }
}

/// Whether ClickHouse converts every value of `from` into `to` without loss
/// (`MODIFY COLUMN` rewrites the stored values).
pub fn can_convert(from: &ChType, to: &ChType) -> bool {
    use ChType::*;
    let int_bits = |t: &ChType| match t {
        Int8 => Some((true, 8)),
        Int16 => Some((true, 16)),
        Int32 => Some((true, 32)),
        Int64 => Some((true, 64)),
        UInt8 => Some((false, 8)),
        UInt16 => Some((false, 16)),
        UInt32 => Some((false, 32)),
        UInt64 => Some((false, 64)),
        _ => None,
    };
    if from == to {
        return true;
    }
    match (from, to) {
        (Nullable(a), Nullable(b)) => can_convert(a, b),
        (Nullable(_), _) => false,
        (a, Nullable(b)) => can_convert(a, b),
        (Float32, Float64) => true,
        (Decimal { precision: p, scale: s }, Decimal { precision: p2, scale: s2 }) => s2 >= s && p2 - s2 >= p - s,
        (DateTime64 { precision: p }, DateTime64 { precision: p2 }) => p2 >= p,
        _ => match (int_bits(from), int_bits(to)) {
            (Some((sa, a)), Some((sb, b))) => (sa == sb && b >= a) || (!sa && sb && b > a),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::schema::{SourceColumn, SourceTable, TableId};

    fn col(name: &str, dt: &str, ct: &str, nullable: bool) -> SourceColumn {
        SourceColumn {
            numeric_precision: if dt == "decimal" { Some(10) } else { None },
            numeric_scale: if dt == "decimal" { Some(2) } else { None },
            datetime_precision: if dt == "datetime" { Some(3) } else { None },
            ..SourceColumn::new(name, dt, ct, nullable)
        }
    }

    fn mapping(cols: Vec<SourceColumn>) -> TableMapping {
        let t = SourceTable { id: TableId::new("shop", "orders"), columns: cols, primary_key: vec!["id".into()], charset: None };
        TableMapping::new(t, "orders".into())
    }

    fn base() -> Vec<SourceColumn> {
        vec![
            col("id", "int", "int", false),
            col("name", "varchar", "varchar(100)", true),
            col("price", "decimal", "decimal(10,2)", false),
            col("qty", "smallint", "smallint", true),
        ]
    }

    const T: &str = "`db`.`orders`";

    fn add(name: &str, default: Option<&str>) -> AlterOp {
        AlterOp::AddColumn { name: name.into(), default: default.map(String::from) }
    }

    #[test]
    fn add_column_positions_and_defaults() {
        let old = mapping(base());
        let mut cols = base();
        cols.insert(0, col("first", "varchar", "varchar(3)", true));
        cols.insert(3, col("flag", "tinyint", "tinyint", false)); // after name
        cols.push(col("note", "varchar", "varchar(5)", false));
        cols.push(col("n2", "int", "int", true));
        cols.push(col("status", "enum", "enum('a','b')", false));
        let new = mapping(cols);
        let ops = [add("first", None), add("flag", Some("1")), add("note", None), add("n2", None), add("status", Some("a"))];
        assert_eq!(
            alter_statements(T, &old, &new, &ops),
            [
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `first` Nullable(String) FIRST",
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `flag` Int8 DEFAULT '1' AFTER `name`",
                // At the end of the mapped columns, before the _peerdb_* metadata columns.
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `note` String DEFAULT '' AFTER `qty`",
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `n2` Nullable(Int32) AFTER `note`",
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `status` String DEFAULT 'a' AFTER `n2`",
            ]
        );
    }

    #[test]
    fn defaults_are_escaped_and_nullable_defaults_kept() {
        let old = mapping(base());
        let mut cols = base();
        cols.push(col("c", "varchar", "varchar(9)", true));
        cols.push(col("d", "decimal", "decimal(10,2)", false));
        let new = mapping(cols);
        let ops = [add("c", Some("it's \\ x")), add("d", None)];
        assert_eq!(
            alter_statements(T, &old, &new, &ops),
            [
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `c` Nullable(String) DEFAULT 'it\\'s \\\\ x' AFTER `qty`",
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `d` Decimal(10, 2) DEFAULT 0 AFTER `c`",
            ]
        );
    }

    #[test]
    fn two_columns_after_the_same_one() {
        // ALTER TABLE orders ADD a INT AFTER id, ADD b INT AFTER id → id, b, a, name...
        let old = mapping(base());
        let mut cols = base();
        cols.insert(1, col("b", "int", "int", true));
        cols.insert(2, col("a", "int", "int", true));
        let new = mapping(cols);
        assert_eq!(
            alter_statements(T, &old, &new, &[add("a", None), add("b", None)]),
            [
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `a` Nullable(Int32) AFTER `id`",
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `b` Nullable(Int32) AFTER `id`",
            ]
        );
    }

    #[test]
    fn drop_rename_modify() {
        let old = mapping(base());
        let mut cols = base();
        cols.remove(3); // qty dropped
        cols[1] = col("title", "varchar", "varchar(200)", true);
        cols[2] = col("amount", "decimal", "decimal(12,2)", true);
        let mut c = cols[2].clone();
        c.numeric_precision = Some(12);
        cols[2] = c;
        let new = mapping(cols);
        let ops = [
            AlterOp::DropColumn { name: "qty".into() },
            AlterOp::RenameColumn { from: "name".into(), to: "title".into() },
            AlterOp::ModifyColumn { old_name: "price".into(), new_name: "amount".into() },
        ];
        assert_eq!(
            alter_statements(T, &old, &new, &ops),
            [
                "ALTER TABLE `db`.`orders` DROP COLUMN IF EXISTS `qty`",
                "ALTER TABLE `db`.`orders` RENAME COLUMN IF EXISTS `name` TO `title`",
                "ALTER TABLE `db`.`orders` RENAME COLUMN IF EXISTS `price` TO `amount`",
                "ALTER TABLE `db`.`orders` MODIFY COLUMN `amount` Nullable(Decimal(12, 2))",
            ]
        );
    }

    #[test]
    fn modify_only_when_the_type_changes_and_converts() {
        let old = mapping(base());
        let mut cols = base();
        cols[3] = col("qty", "int", "int", true); // Int16 → Int32
        cols[1] = col("name", "varchar", "varchar(300)", true); // String → String
        let new = mapping(cols);
        let ops = [
            AlterOp::ModifyColumn { old_name: "qty".into(), new_name: "qty".into() },
            AlterOp::ModifyColumn { old_name: "name".into(), new_name: "name".into() },
        ];
        assert_eq!(alter_statements(T, &old, &new, &ops), ["ALTER TABLE `db`.`orders` MODIFY COLUMN `qty` Nullable(Int32)"]);
        // Narrowing is never emitted.
        let mut cols = base();
        cols[3] = col("qty", "tinyint", "tinyint", true);
        let narrowed = mapping(cols);
        let ops = [AlterOp::ModifyColumn { old_name: "qty".into(), new_name: "qty".into() }];
        assert!(alter_statements(T, &old, &narrowed, &ops).is_empty());
    }

    #[test]
    fn added_then_renamed_or_dropped_in_one_statement() {
        let old = mapping(base());
        let mut cols = base();
        cols.push(col("z", "int", "int", true));
        let new = mapping(cols);
        let ops = [
            add("y", None),
            AlterOp::RenameColumn { from: "y".into(), to: "z".into() },
            add("tmp", None),
            AlterOp::DropColumn { name: "tmp".into() },
        ];
        assert_eq!(
            alter_statements(T, &old, &new, &ops),
            [
                "ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `y` Nullable(Int32) AFTER `qty`",
                "ALTER TABLE `db`.`orders` RENAME COLUMN IF EXISTS `y` TO `z`",
            ]
        );
    }

    #[test]
    fn quoting() {
        let old = mapping(base());
        let mut cols = base();
        cols.push(col("we`ird col", "int", "int", true));
        let new = mapping(cols);
        assert_eq!(
            alter_statements(T, &old, &new, &[add("we`ird col", None)]),
            ["ALTER TABLE `db`.`orders` ADD COLUMN IF NOT EXISTS `we\\`ird col` Nullable(Int32) AFTER `qty`"]
        );
    }

    #[test]
    fn safe_conversions() {
        use ChType::*;
        let n = |t: ChType| t.nullable();
        assert!(can_convert(&Int8, &Int64));
        assert!(can_convert(&UInt16, &UInt32));
        assert!(can_convert(&UInt32, &Int64));
        assert!(!can_convert(&Int32, &UInt64));
        assert!(!can_convert(&Int64, &Int32));
        assert!(can_convert(&Float32, &Float64));
        assert!(!can_convert(&Float64, &Float32));
        assert!(can_convert(&Decimal { precision: 10, scale: 2 }, &Decimal { precision: 12, scale: 2 }));
        assert!(!can_convert(&Decimal { precision: 10, scale: 2 }, &Decimal { precision: 10, scale: 3 }));
        assert!(can_convert(&n(DateTime64 { precision: 3 }), &n(DateTime64 { precision: 6 })));
        assert!(!can_convert(&n(DateTime64 { precision: 6 }), &n(DateTime64 { precision: 0 })));
        assert!(can_convert(&Int32, &n(Int32)));
        assert!(!can_convert(&n(Int32), &Int32));
        assert!(!can_convert(&String, &Int32));
        assert!(can_convert(&String, &String));
    }
}
