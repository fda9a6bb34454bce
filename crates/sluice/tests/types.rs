//! Type fidelity end to end: every MySQL/MariaDB column type family, with edge
//! values, through the snapshot and through the binlog, compared with the
//! source server's own rendering of each value.
//!
//! For each flavor one pipe (`snapshot_and_cdc`) carries a table per type
//! family. The test (1) compares the snapshot copy with the source, (2) inserts
//! the same literal rows again under keys `KEY_OFFSET + k` so they travel
//! through the binlog, and checks that ClickHouse holds byte-identical values
//! for `k` and `KEY_OFFSET + k` (snapshot path = binlog path), (3) updates every
//! row to another row's values and deletes some, and compares again.
//!
//! Comparison goes through the normalisation the README documents (see
//! `Norm`): the source side is always the server's own text for the value
//! (`CAST(.. AS CHAR)`, `HEX()`, `DATE_FORMAT`, `ST_AsText`, binary-protocol
//! floats), never a value computed by Sluice's code.

mod common;
use common::workload::{normalise_decimal, normalise_json};
use common::*;
use mysql_async::prelude::*;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);
const KEY_OFFSET: usize = 1000;

/// How both sides' text is brought to one form before comparing (README: "Normalisation used by the tests").
#[derive(Clone, Copy, Debug)]
enum Norm {
    /// Compared as is.
    Exact,
    /// Numbers: trailing fractional zeros dropped (ClickHouse prints none).
    Decimal,
    /// Parsed JSON; numbers compared by value.
    Json,
    /// Parsed as f32 / f64 and compared bit for bit.
    F32,
    F64,
    /// Source: `HEX()` of MySQL's VECTOR bytes; destination: ClickHouse's `[a,b,..]`; compared as f32 bits; NULL ≡ `[]`.
    Vector,
    /// WKT: numbers compared by value, spaces after commas ignored, MULTIPOINT members with or without parentheses.
    Wkt,
    /// IP address text, parsed (so `::ffff:1.2.3.4` and its long form agree).
    Ip,
}

struct Col {
    name: String,
    ddl: String,
    /// Source SQL rendering, `{c}` is the quoted column.
    src: String,
    /// ClickHouse SQL rendering, `{c}` is the quoted column.
    ch: String,
    norm: Norm,
    /// Generated columns get no value in INSERT/UPDATE.
    generated: bool,
}

fn col(name: &str, ddl: &str, src: &str, ch: &str, norm: Norm) -> Col {
    Col { name: name.into(), ddl: ddl.into(), src: src.into(), ch: ch.into(), norm, generated: false }
}

struct Table {
    name: String,
    cols: Vec<Col>,
    /// SQL literals, one per non-generated column.
    rows: Vec<Vec<String>>,
}

fn mq(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn cq(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// The same literal in every column of a row.
fn same(n: usize, lit: &str) -> Vec<String> {
    vec![lit.to_string(); n]
}

fn lits(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const DATE_NULL_IF: &str = "IF({c} < '1900-01-01' OR {c} > '2299-12-31 23:59:59.999999' OR MONTH({c}) = 0 OR DAY({c}) = 0, NULL, ";

fn tables(flavor: Flavor) -> Vec<Table> {
    let mut out = Vec::new();

    // Integers, full range.
    let ints = [
        ("ti", "TINYINT"),
        ("tu", "TINYINT UNSIGNED"),
        ("si", "SMALLINT"),
        ("su", "SMALLINT UNSIGNED"),
        ("mi", "MEDIUMINT"),
        ("mu", "MEDIUMINT UNSIGNED"),
        ("i", "INT"),
        ("iu", "INT UNSIGNED"),
        ("bi", "BIGINT"),
        ("bu", "BIGINT UNSIGNED"),
        ("b", "BOOL"),
    ];
    out.push(Table {
        name: "ints".into(),
        cols: ints.iter().map(|(n, t)| col(n, t, "{c}", "{c}", Norm::Exact)).collect(),
        rows: vec![
            lits(&["-128", "0", "-32768", "0", "-8388608", "0", "-2147483648", "0", "-9223372036854775808", "0", "0"]),
            lits(&[
                "127",
                "255",
                "32767",
                "65535",
                "8388607",
                "16777215",
                "2147483647",
                "4294967295",
                "9223372036854775807",
                "18446744073709551615",
                "1",
            ]),
            lits(&["0", "1", "-1", "1", "-1", "1", "-1", "1", "-1", "1", "-128"]),
            lits(&["-1", "128", "256", "32768", "65536", "8388608", "16777216", "2147483648", "4294967296", "9223372036854775808", "127"]),
            same(11, "NULL"),
        ],
    });

    // BIT(1..64).
    let bits = [1u32, 7, 8, 17, 63, 64];
    let bit_lit = |n: u32, v: u128| format!("b'{:b}'", v & ((1u128 << n) - 1));
    out.push(Table {
        name: "bits".into(),
        cols: bits.iter().map(|n| col(&format!("b{n}"), &format!("BIT({n})"), "CAST({c} AS UNSIGNED)", "{c}", Norm::Exact)).collect(),
        rows: vec![
            bits.iter().map(|n| bit_lit(*n, 0)).collect(),
            bits.iter().map(|n| bit_lit(*n, u128::MAX)).collect(),
            bits.iter().map(|n| bit_lit(*n, 1)).collect(),
            bits.iter().map(|n| bit_lit(*n, 0xA5A5_A5A5_A5A5_A5A5_A5A5)).collect(),
            bits.iter().map(|n| bit_lit(*n, 1u128 << (n - 1))).collect(),
            same(bits.len(), "NULL"),
        ],
    });

    // DECIMAL up to (65,30).
    let decs = [(1u32, 0u32), (10, 2), (18, 9), (19, 0), (38, 10), (65, 30), (65, 0), (30, 30)];
    let dec_lit = |p: u32, s: u32, digit: char, neg: bool| {
        let int = p - s;
        let mut t = String::new();
        if neg {
            t.push('-');
        }
        t.push_str(&if int == 0 { "0".into() } else { digit.to_string().repeat(int as usize) });
        if s > 0 {
            t.push('.');
            t.push_str(&digit.to_string().repeat(s as usize));
        }
        t
    };
    let smallest = |s: u32| if s == 0 { "1".to_string() } else { format!("0.{}1", "0".repeat(s as usize - 1)) };
    out.push(Table {
        name: "decimals".into(),
        cols: decs
            .iter()
            .map(|(p, s)| col(&format!("d{p}_{s}"), &format!("DECIMAL({p},{s})"), "CAST({c} AS CHAR)", "toString({c})", Norm::Decimal))
            .collect(),
        rows: vec![
            decs.iter().map(|(p, s)| dec_lit(*p, *s, '9', false)).collect(),
            decs.iter().map(|(p, s)| dec_lit(*p, *s, '9', true)).collect(),
            same(decs.len(), "0"),
            decs.iter().map(|(_, s)| smallest(*s)).collect(),
            decs.iter().map(|(_, s)| format!("-{}", smallest(*s))).collect(),
            decs.iter().map(|(p, s)| dec_lit(*p, *s, '1', false)).collect(),
            same(decs.len(), "NULL"),
        ],
    });

    // FLOAT and DOUBLE: values whose short decimal text is not the stored binary value.
    out.push(Table {
        name: "floats".into(),
        cols: vec![
            col("f", "FLOAT", "{c}", "toString({c})", Norm::F32),
            col("d", "DOUBLE", "{c}", "toString({c})", Norm::F64),
            col("r", "REAL", "{c}", "toString({c})", Norm::F64),
        ],
        rows: vec![
            lits(&["0.1", "0.1", "0.1 + 0.2"]),
            lits(&["3.4028234e38", "1.7976931348623157e308", "-1.7976931348623157e308"]),
            lits(&["-3.4028234e38", "2.2250738585072014e-308", "-2.2250738585072014e-308"]),
            lits(&["1.17549435e-38", "4.9406564584124654e-300", "123456789.123456789"]),
            lits(&["16777217", "9007199254740993", "1e22"]),
            lits(&["0", "-0.0", "0.30000000000000004"]),
            lits(&["2.5e-3", "1/3", "2/3"]),
            same(3, "NULL"),
        ],
    });

    // Character data: utf8mb4 (4-byte emoji), binary collation, latin1.
    let text_src = "HEX(CONVERT({c} USING utf8mb4))";
    let text_cols = [
        ("c", "CHAR(10)"),
        ("v", "VARCHAR(100)"),
        ("vb", "VARCHAR(100) COLLATE utf8mb4_bin"),
        ("tt", "TINYTEXT"),
        ("t", "TEXT"),
        ("mt", "MEDIUMTEXT"),
        ("lt", "LONGTEXT"),
        ("l1", "VARCHAR(20) CHARACTER SET latin1"),
        ("l1c", "CHAR(6) CHARACTER SET latin1 COLLATE latin1_bin"),
    ];
    let tcols: Vec<Col> = text_cols.iter().map(|(n, t)| col(n, t, text_src, "hex({c})", Norm::Exact)).collect();
    let text_row = |s: &str, latin: &str| {
        let mut r = same(7, s);
        r.push(latin.to_string());
        r.push(latin.to_string());
        r
    };
    out.push(Table {
        name: "texts".into(),
        cols: tcols,
        rows: vec![
            text_row("''", "''"),
            text_row("'a'", "'z'"),
            text_row("'😀🎉 ü'", "'ü€ß'"),
            text_row("'tab\\there\\nnl\\\\ \\'q\\' \"dq\"'", "'a\\tb\\\\'"),
            text_row("CONCAT('nul', CHAR(0), 'x')", "CONCAT('n', CHAR(0))"),
            text_row("'trail  '", "'tr  '"),
            text_row("' lead'", "' ld'"),
            text_row("'日本語テキスト'", "'ÿþ'"),
            same(9, "NULL"),
        ],
    });
    // Long values beyond the 1-byte/2-byte length prefixes.
    out.push(Table {
        name: "long_texts".into(),
        cols: vec![
            col("t", "TEXT", text_src, "hex({c})", Norm::Exact),
            col("mt", "MEDIUMTEXT", text_src, "hex({c})", Norm::Exact),
            col("lb", "LONGBLOB", "HEX({c})", "hex({c})", Norm::Exact),
            col("v", "VARCHAR(1000)", text_src, "hex({c})", Norm::Exact),
        ],
        rows: vec![
            lits(&["REPEAT('ü', 30000)", "REPEAT('😀', 100000)", "REPEAT(X'00FF', 70000)", "REPEAT('é', 1000)"]),
            lits(&["REPEAT('a', 255)", "REPEAT('b', 256)", "REPEAT(X'00', 65536)", "REPEAT('c', 256)"]),
        ],
    });

    // Binary strings: trailing zero bytes are part of the value.
    let bin_cols = [
        ("b", "BINARY(8)"),
        ("vb", "VARBINARY(16)"),
        ("tb", "TINYBLOB"),
        ("bl", "BLOB"),
        ("mb", "MEDIUMBLOB"),
        ("lb", "LONGBLOB"),
        ("b1", "BINARY(1)"),
    ];
    out.push(Table {
        name: "binaries".into(),
        cols: bin_cols.iter().map(|(n, t)| col(n, t, "HEX({c})", "hex({c})", Norm::Exact)).collect(),
        rows: vec![
            same(7, "X''"),
            lits(&["X'01020000'", "X'01020000'", "X'0000'", "X'00'", "X'FF00'", "X'0000000000'", "X'00'"]),
            lits(&["X'0000000000000000'", "X'00000000000000000000000000000000'", "X'20'", "X'2020'", "X'00FF00'", "X'FF'", "X'20'"]),
            lits(&["X'FFFFFFFFFFFFFFFF'", "'text '", "'😀'", "X'0D0A09'", "X'5C'", "X'27'", "X'FF'"]),
            same(7, "NULL"),
        ],
    });

    // ENUM and SET: labels, empty (invalid value under sql_mode=''), all members, 64-member SET.
    let set64: Vec<String> = (0..64).map(|i| format!("'m{i}'")).collect();
    out.push(Table {
        name: "enums".into(),
        cols: vec![
            col("e", "ENUM('a','b,c','it''s','ü','😀','')", "CAST({c} AS CHAR)", "{c}", Norm::Exact),
            col("el", "ENUM('x','é') CHARACTER SET latin1", "CAST({c} AS CHAR)", "{c}", Norm::Exact),
            col("s", "SET('a','b','c','d','ü')", "CAST({c} AS CHAR)", "{c}", Norm::Exact),
            col("s64", &format!("SET({})", set64.join(",")), "CAST({c} AS CHAR)", "{c}", Norm::Exact),
        ],
        rows: vec![
            lits(&["'a'", "'x'", "'a'", "'m0'"]),
            lits(&["'b,c'", "'é'", "'a,d'", "'m63'"]),
            lits(&["'it''s'", "'x'", "'a,b,c,d,ü'", "'m0,m31,m32,m63'"]),
            lits(&["'😀'", "'é'", "''", "''"]),
            lits(&["'ü'", "'nope'", "'d,a'", &format!("'{}'", (0..64).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","))]),
            lits(&["''", "'x'", "'ü'", "'m1'"]),
            lits(&["'bogus'", "'x'", "'c'", "'m2'"]),
            same(4, "NULL"),
        ],
    });

    // JSON.
    let mut json_rows = vec![
        lits(&["'{}'"]),
        lits(&["'[]'"]),
        lits(&["'null'"]),
        lits(&["'\"just a string\"'"]),
        lits(&["'{\"a\": [1, 2.5, -3e10, true, false, null], \"ü\": \"😀\", \"esc\": \"q\\\\\"b\\\\\\\\c\\\\n\\\\u0000\"}'"]),
        lits(&["'[18446744073709551615, -9223372036854775808, 9223372036854775807, 0.1, 1.7976931348623157e308, 5e-324]'"]),
        lits(&["'{\"deep\": {\"er\": {\"est\": [[[[1]]]]}}, \"k\": \"\"}'"]),
        lits(&["'0.30000000000000004'"]),
        lits(&["NULL"]),
    ];
    if flavor == Flavor::MySql {
        // Binary JSON's opaque types (DECIMAL, DATETIME) only exist on MySQL.
        json_rows.push(lits(&[
            "JSON_ARRAY(CAST(1.50 AS DECIMAL(5,2)), CAST('2024-01-02 03:04:05.5' AS DATETIME(1)), CAST('2024-01-02' AS DATE))",
        ]));
    }
    out.push(Table { name: "jsons".into(), cols: vec![col("j", "JSON", "{c}", "{c}", Norm::Json)], rows: json_rows });

    // DATE, DATETIME(0..6), TIMESTAMP(0..6), written by a session in time zone +05:30 with sql_mode=''.
    let mut dcols = vec![col("d", "DATE", &format!("{DATE_NULL_IF}DATE_FORMAT({{c}}, '%Y-%m-%d'))"), "toString({c})", Norm::Exact)];
    let dt_src = |n: u32| {
        let len = 19 + if n > 0 { n + 1 } else { 0 };
        format!("{DATE_NULL_IF}LEFT(DATE_FORMAT({{c}}, '%Y-%m-%d %H:%i:%s.%f'), {len}))")
    };
    for n in 0..=6 {
        dcols.push(col(&format!("dt{n}"), &format!("DATETIME({n})"), &dt_src(n), "toString({c})", Norm::Exact));
    }
    for n in 0..=6 {
        dcols.push(col(&format!("ts{n}"), &format!("TIMESTAMP({n}) NULL"), &dt_src(n), "toString({c})", Norm::Exact));
    }
    let drow = |d: &str, dt: &str, ts: &str| {
        let mut r = vec![d.to_string()];
        r.extend(same(7, dt));
        r.extend(same(7, ts));
        r
    };
    out.push(Table {
        name: "dates".into(),
        cols: dcols,
        rows: vec![
            drow("'1000-01-01'", "'1000-01-01 00:00:00'", "'1970-01-01 05:30:01'"),
            drow("'9999-12-31'", "'9999-12-31 23:59:59.999999'", "'2038-01-19 08:44:07.999999'"),
            drow("'1900-01-01'", "'1900-01-01 00:00:00'", "'2000-02-29 12:34:56.123456'"),
            drow("'2299-12-31'", "'2299-12-31 23:59:59.999999'", "'2024-03-31 01:59:59.5'"),
            drow("'1899-12-31'", "'1899-12-31 23:59:59.999999'", "'1999-12-31 23:59:59.999999'"),
            drow("'2300-01-01'", "'2300-01-01 00:00:00'", "'2024-06-01 12:00:00.000001'"),
            drow("'0000-00-00'", "'0000-00-00 00:00:00'", "'0000-00-00 00:00:00'"),
            drow("'2024-00-10'", "'2024-02-00 10:00:00'", "'1970-01-01 05:30:00.5'"),
            drow("'2024-02-29'", "'1969-12-31 23:59:59.999999'", "'2001-09-09 07:16:40'"),
            drow("'1970-01-01'", "'2024-06-01 12:00:00.999999'", "'2024-06-01 12:00:00.999999'"),
            same(15, "NULL"),
        ],
    });

    // TIME(0..6): negative, beyond 24 h, extremes.
    out.push(Table {
        name: "times".into(),
        cols: (0..=6).map(|n| col(&format!("t{n}"), &format!("TIME({n})"), "CAST({c} AS CHAR)", "{c}", Norm::Exact)).collect(),
        rows: vec![
            same(7, "'-838:59:59'"),
            same(7, "'838:59:59'"),
            same(7, "'00:00:00'"),
            same(7, "'-00:00:01.5'"),
            same(7, "'25:00:00.123456'"),
            same(7, "'-100:30:15.000001'"),
            same(7, "'12:34:56.999999'"),
            same(7, "'-00:00:00.000001'"),
            same(7, "NULL"),
        ],
    });

    // YEAR.
    out.push(Table {
        name: "years".into(),
        cols: vec![col("y", "YEAR", "CAST({c} AS UNSIGNED)", "{c}", Norm::Exact)],
        rows: vec![lits(&["1901"]), lits(&["2155"]), lits(&["0"]), lits(&["'0000'"]), lits(&["2024"]), lits(&["'70'"]), lits(&["NULL"])],
    });

    // Spatial types.
    let wkt_src = "CONCAT(IF(ST_SRID({c}) = 0, '', CONCAT('SRID=', ST_SRID({c}), ';')), ST_AsText({c}))";
    let g = |wkt: &str| format!("ST_GeomFromText('{wkt}')");
    out.push(Table {
        name: "spatial".into(),
        cols: vec![
            col("g", "GEOMETRY", wkt_src, "{c}", Norm::Wkt),
            col("p", "POINT", wkt_src, "{c}", Norm::Wkt),
            col("ls", "LINESTRING", wkt_src, "{c}", Norm::Wkt),
            col("pg", "POLYGON", wkt_src, "{c}", Norm::Wkt),
        ],
        rows: vec![
            vec![
                g("POINT(1 2)"),
                g("POINT(-1.5 0.30000000000000004)"),
                g("LINESTRING(0 0,1 1,2 3)"),
                g("POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))"),
            ],
            vec![
                g("LINESTRING(0.1 0.2,1e10 -1e-10)"),
                g("POINT(1e300 -2.5e-300)"),
                g("LINESTRING(-1 -1,1 1)"),
                g("POLYGON((0 0,1 0,0 1,0 0))"),
            ],
            vec![g("MULTIPOINT(1 1,2 2)"), g("POINT(0 0)"), "NULL".into(), "NULL".into()],
            vec![g("MULTILINESTRING((0 0,1 1),(2 2,3 3))"), "ST_GeomFromText('POINT(3 4)', 3857)".into(), "NULL".into(), "NULL".into()],
            vec![g("MULTIPOLYGON(((0 0,1 0,0 1,0 0)),((5 5,6 5,5 6,5 5)))"), "NULL".into(), "NULL".into(), "NULL".into()],
            vec![g("GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))"), "NULL".into(), "NULL".into(), "NULL".into()],
            vec!["ST_GeomFromText('POINT(10 20)', 3857)".into(), "NULL".into(), "NULL".into(), "NULL".into()],
            same(4, "NULL"),
        ],
    });

    // Generated columns, virtual and stored.
    let mut gen_v = col("v", "INT AS (a + b) VIRTUAL", "{c}", "{c}", Norm::Exact);
    gen_v.generated = true;
    let mut gen_s = col("s", "VARCHAR(40) AS (CONCAT(a, '-', b)) STORED", "HEX({c})", "hex({c})", Norm::Exact);
    gen_s.generated = true;
    // MariaDB 11.x leaves generated columns out of UPDATE/DELETE images: its own test below.
    if flavor != Flavor::MariaDb118 {
        out.push(Table {
            name: "generated".into(),
            cols: vec![col("a", "INT", "{c}", "{c}", Norm::Exact), col("b", "INT", "{c}", "{c}", Norm::Exact), gen_v, gen_s],
            rows: vec![lits(&["1", "2"]), lits(&["-5", "NULL"]), lits(&["2147483647", "0"]), lits(&["NULL", "NULL"])],
        });
    }

    match flavor {
        Flavor::MySql => {
            out.push(Table {
                name: "vectors".into(),
                cols: vec![
                    col("v", "VECTOR(4)", "HEX({c})", "toString({c})", Norm::Vector),
                    col("v1", "VECTOR(1)", "HEX({c})", "toString({c})", Norm::Vector),
                ],
                rows: vec![
                    lits(&["STRING_TO_VECTOR('[1.5,-2,3.4e38,1.1754944e-38]')", "STRING_TO_VECTOR('[0]')"]),
                    lits(&["STRING_TO_VECTOR('[0.1,0.2,0.3,-0]')", "STRING_TO_VECTOR('[-1.17549435e-38]')"]),
                    lits(&["NULL", "NULL"]),
                ],
            });
        }
        Flavor::MariaDb | Flavor::MariaDb118 => {
            out.push(Table {
                name: "maria_types".into(),
                cols: vec![
                    col("u", "UUID", "CAST({c} AS CHAR)", "toString({c})", Norm::Exact),
                    col("i4", "INET4", "CAST({c} AS CHAR)", "toString({c})", Norm::Ip),
                    col("i6", "INET6", "CAST({c} AS CHAR)", "toString({c})", Norm::Ip),
                ],
                rows: vec![
                    lits(&["'00000000-0000-0000-0000-000000000000'", "'0.0.0.0'", "'::'"]),
                    lits(&["'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'255.255.255.255'", "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'"]),
                    // A time-based (v1) UUID: MariaDB stores it with its segments swapped.
                    lits(&["'6ccd780c-baba-1026-9564-5b8c656024db'", "'192.168.1.0'", "'::ffff:1.2.3.4'"]),
                    lits(&["'123e4567-e89b-42d3-a456-426614174000'", "'10.0.0.1'", "'2001:db8::'"]),
                    lits(&["'12345678-1234-1234-8234-000000000000'", "'1.0.0.0'", "'::1'"]),
                    lits(&["NULL", "NULL", "NULL"]),
                ],
            });
            if flavor == Flavor::MariaDb118 {
                // VECTOR (11.7+) and COMPRESSED columns: long values are stored deflated, short ones as is.
                let hex = |n: &str, t: &str| col(n, t, "HEX({c})", "hex({c})", Norm::Exact);
                out.push(Table {
                    name: "maria118_types".into(),
                    cols: vec![
                        col("v", "VECTOR(3)", "HEX({c})", "toString({c})", Norm::Vector),
                        hex("vc", "VARCHAR(300) COMPRESSED"),
                        hex("tc", "TEXT COMPRESSED"),
                        hex("bc", "BLOB COMPRESSED"),
                        hex("vbc", "VARBINARY(500) COMPRESSED"),
                    ],
                    rows: vec![
                        lits(&[
                            "VEC_FromText('[1.5,-2,3.4e38]')",
                            "REPEAT('ü', 300)",
                            "REPEAT('😀 text ', 5000)",
                            "REPEAT(X'00FF', 40000)",
                            "REPEAT(X'01', 500)",
                        ]),
                        lits(&["VEC_FromText('[0.1,0.2,-0]')", "'x'", "'short'", "X'00'", "X'FF'"]),
                        lits(&["VEC_FromText('[1.1754944e-38,0,1]')", "''", "''", "X''", "X''"]),
                        lits(&["NULL", "NULL", "NULL", "NULL", "NULL"]),
                    ],
                });
            }
        }
    }
    out
}

/// Creates the table and inserts its rows under keys `offset + 1..`.
fn create_sql(db: &str, t: &Table) -> String {
    let cols: Vec<String> = t.cols.iter().map(|c| format!("{} {}", mq(&c.name), c.ddl)).collect();
    format!("CREATE TABLE {}.{} (id INT PRIMARY KEY, {})", mq(db), mq(&t.name), cols.join(", "))
}

fn insert_sql(db: &str, t: &Table, offset: usize) -> Vec<String> {
    let names: Vec<String> = t.cols.iter().filter(|c| !c.generated).map(|c| mq(&c.name)).collect();
    t.rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!("INSERT INTO {}.{} (id, {}) VALUES ({}, {})", mq(db), mq(&t.name), names.join(", "), offset + i + 1, r.join(", "))
        })
        .collect()
}

/// Gives row `k` the values of row `k + 1` (cyclically), as UPDATEs.
fn update_sql(db: &str, t: &Table) -> Vec<String> {
    let names: Vec<&Col> = t.cols.iter().filter(|c| !c.generated).collect();
    let n = t.rows.len();
    (0..n)
        .map(|i| {
            let from = &t.rows[(i + 1) % n];
            let sets: Vec<String> = names.iter().zip(from).map(|(c, v)| format!("{} = {v}", mq(&c.name))).collect();
            format!("UPDATE {}.{} SET {} WHERE id = {}", mq(db), mq(&t.name), sets.join(", "), i + 1)
        })
        .collect()
}

/// A session that writes like an application with a local time zone and a lax sql_mode.
async fn writer(flavor: Flavor) -> mysql_async::Conn {
    let mut c = mysql(flavor).await;
    c.query_drop("SET time_zone = '+05:30', sql_mode = ''").await.unwrap();
    c
}

fn parse_floats<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

fn norm_json_value(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) => {
            let t = n.to_string();
            if let Ok(i) = t.parse::<i128>() {
                J::String(format!("int:{i}"))
            } else {
                J::String(format!("num:{:e}", t.parse::<f64>().unwrap_or(f64::NAN)))
            }
        }
        J::Array(a) => J::Array(a.into_iter().map(norm_json_value).collect()),
        J::Object(o) => {
            let mut items: Vec<(String, J)> = o.into_iter().map(|(k, v)| (k, norm_json_value(v))).collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            J::Object(items.into_iter().collect())
        }
        other => other,
    }
}

fn norm_wkt(s: &str) -> String {
    let mut out = String::new();
    let mut tok = String::new();
    let flush = |tok: &mut String, out: &mut String| {
        if tok.is_empty() {
            return;
        }
        match tok.parse::<f64>() {
            Ok(f) if tok.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.') => out.push_str(&format!("{f:e}")),
            _ => out.push_str(&tok.to_ascii_uppercase()),
        }
        tok.clear();
    };
    for ch in s.chars() {
        match ch {
            '(' | ')' | ',' | ' ' | ';' | '=' => {
                flush(&mut tok, &mut out);
                if ch == ' ' {
                    if !out.ends_with([' ', '(', ',']) {
                        out.push(' ');
                    }
                } else {
                    if out.ends_with(' ') {
                        out.pop();
                    }
                    out.push(ch);
                }
            }
            c => tok.push(c),
        }
    }
    flush(&mut tok, &mut out);
    // MariaDB writes MULTIPOINT(1 1,2 2), MySQL MULTIPOINT((1 1),(2 2)): compare without the inner parentheses.
    let mut res = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("MULTIPOINT(") {
        let (head, tail) = rest.split_at(i + "MULTIPOINT(".len());
        res.push_str(head);
        let mut depth = 1;
        let mut end = tail.len();
        for (j, ch) in tail.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' if depth == 1 => {
                    end = j;
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        res.extend(tail[..end].chars().filter(|c| *c != '(' && *c != ')'));
        rest = &tail[end..];
    }
    res.push_str(rest);
    res
}

fn normalise(norm: Norm, source_side: bool, v: &str) -> String {
    if v == "\\N" {
        // ClickHouse has no Nullable(Array): a NULL VECTOR is written as [] (README).
        return if matches!(norm, Norm::Vector) { "[]".into() } else { v.to_string() };
    }
    match norm {
        Norm::Exact => v.to_string(),
        Norm::Decimal => normalise_decimal(v),
        Norm::Json => serde_json::from_str::<serde_json::Value>(v)
            .map(|j| norm_json_value(j).to_string())
            .unwrap_or_else(|_| format!("unparsable JSON {}", normalise_json(v))),
        Norm::F32 => parse_floats::<f32>(v).map(|f| format!("{:08x}", f.to_bits())).unwrap_or_else(|| format!("bad f32 {v}")),
        Norm::F64 => parse_floats::<f64>(v).map(|f| format!("{:016x}", f.to_bits())).unwrap_or_else(|| format!("bad f64 {v}")),
        Norm::Vector => {
            let floats: Vec<u32> = if source_side {
                let bytes: Vec<u8> = (0..v.len() / 2).map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap()).collect();
                bytes.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
            } else {
                v.trim_matches(['[', ']'])
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<f32>().map(f32::to_bits).unwrap_or(0xdead))
                    .collect()
            };
            format!("{floats:08x?}")
        }
        Norm::Wkt => norm_wkt(v),
        Norm::Ip => v.parse::<std::net::IpAddr>().map(|ip| format!("{ip:?}")).unwrap_or_else(|_| format!("bad ip {v}")),
    }
}

fn subst(expr: &str, quoted: &str) -> String {
    expr.replace("{c}", quoted)
}

/// Source rows (binary protocol, so floats arrive exactly) vs destination FINAL rows, normalised.
async fn compare_table(flavor: Flavor, db: &str, ch_db: &str, t: &Table) -> Result<(), String> {
    let mut c = mysql(flavor).await;
    let src_exprs: Vec<String> = t.cols.iter().map(|col| subst(&col.src, &mq(&col.name))).collect();
    let rows: Vec<mysql_async::Row> = c
        .exec(format!("SELECT id, {} FROM {}.{} ORDER BY id", src_exprs.join(", "), mq(db), mq(&t.name)), ())
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    let src: Vec<Vec<String>> = rows.into_iter().map(|r| r.unwrap().iter().map(render).collect()).collect();
    let ch_exprs: Vec<String> = t.cols.iter().map(|col| subst(&col.ch, &cq(&col.name))).collect();
    let dst = ch_rows(&format!(
        "SELECT id, {} FROM {}.{} FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id",
        ch_exprs.join(", "),
        cq(ch_db),
        cq(&t.name)
    ))
    .await?;
    let fix = |rows: Vec<Vec<String>>, source_side: bool| -> Vec<Vec<String>> {
        rows.into_iter()
            .map(|r| {
                let mut out = vec![r[0].clone()];
                for (i, col) in t.cols.iter().enumerate() {
                    let v = r.get(i + 1).cloned().unwrap_or_default();
                    out.push(format!("{}={}", col.name, normalise(col.norm, source_side, &v)));
                }
                out
            })
            .collect()
    };
    diff(&fix(src, true), &fix(dst, false)).map_err(|e| format!("{}: {e}", t.name))
}

/// Destination rows `k` (snapshot) and `KEY_OFFSET + k` (binlog) hold identical values.
async fn snapshot_equals_binlog(ch_db: &str, t: &Table) -> Result<(), String> {
    let rows = ch_rows(&format!(
        "SELECT id, * EXCEPT (id, _peerdb_synced_at, _peerdb_version, _peerdb_is_deleted) FROM {}.{} FINAL \
         WHERE _peerdb_is_deleted = 0 ORDER BY id",
        cq(ch_db),
        cq(&t.name)
    ))
    .await?;
    let by_id: std::collections::HashMap<usize, &[String]> = rows.iter().map(|r| (r[0].parse().unwrap(), &r[1..])).collect();
    for k in 1..=t.rows.len() {
        let (Some(a), Some(b)) = (by_id.get(&k), by_id.get(&(KEY_OFFSET + k))) else {
            return Err(format!("{}: row {k} or {} missing", t.name, KEY_OFFSET + k));
        };
        if a != b {
            return Err(format!("{}: snapshot row {k} {a:?} differs from binlog row {} {b:?}", t.name, KEY_OFFSET + k));
        }
    }
    Ok(())
}

async fn compare_all(flavor: Flavor, db: &str, ch_db: &str, tables: &[Table]) -> Result<(), String> {
    let mut errors = Vec::new();
    for t in tables {
        if let Err(e) = compare_table(flavor, db, ch_db, t).await {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The log lines worth showing when a comparison fails: errors, warnings, panics.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("panicked")).collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

async fn type_torture(flavor: Flavor) {
    let started = std::time::Instant::now();
    let db = unique(&format!("types_{}", flavor.tag()));
    let ch_db = format!("{db}_ch");
    let tables = tables(flavor);
    let mut w = writer(flavor).await;
    w.query_drop(format!("CREATE DATABASE {} CHARACTER SET utf8mb4", mq(&db))).await.unwrap();
    for t in &tables {
        w.query_drop(create_sql(&db, t)).await.unwrap_or_else(|e| panic!("{}: {e}", t.name));
        for sql in insert_sql(&db, t, 0) {
            w.query_drop(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let run =
        SluiceRun::start(dir.path(), &spec(&db, flavor, serde_json::json!([{"source": format!("{db}.*")}]), &ch_db, "snapshot_and_cdc"));
    eventually_logged(CONVERGE, || run.log(), "→ Running").await;
    // 1. The snapshot copy.
    compare_all(flavor, &db, &ch_db, &tables).await.unwrap_or_else(|e| panic!("snapshot: {e}"));
    // 2. The same values again, through the binlog.
    for t in &tables {
        for sql in insert_sql(&db, t, KEY_OFFSET) {
            w.query_drop(&sql).await.unwrap();
        }
    }
    eventually(CONVERGE, || async {
        compare_all(flavor, &db, &ch_db, &tables).await.map_err(|e| format!("CDC inserts: {e}\nlog tail:\n{}", tail(&run.log())))
    })
    .await;
    for t in &tables {
        snapshot_equals_binlog(&ch_db, t).await.unwrap();
    }
    // 3. Updates to every other edge value, deletes, and NULLs written over values.
    for t in &tables {
        for sql in update_sql(&db, t) {
            w.query_drop(&sql).await.unwrap();
        }
        w.query_drop(format!("DELETE FROM {}.{} WHERE id IN (2, {})", mq(&db), mq(&t.name), KEY_OFFSET + 1)).await.unwrap();
    }
    eventually(CONVERGE, || async {
        compare_all(flavor, &db, &ch_db, &tables).await.map_err(|e| format!("CDC updates/deletes: {e}\nlog tail:\n{}", tail(&run.log())))
    })
    .await;
    eprintln!("{flavor:?} type torture passed in {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_type_torture() {
    type_torture(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_type_torture() {
    type_torture(Flavor::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_type_torture() {
    type_torture(Flavor::MariaDb118).await;
}

/// MariaDB 11.x writes generated columns into INSERT images but leaves them out
/// of UPDATE and DELETE images, even with `binlog_row_image=FULL`: a pipe that
/// tracks them puts the table in Error naming the columns and `exclude_columns`;
/// with the columns excluded the table replicates updates and deletes.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb118_generated_columns_are_refused_or_excluded() {
    let flavor = Flavor::MariaDb118;
    let db = unique("gen_m118");
    let mut w = writer(flavor).await;
    w.query_drop(format!("CREATE DATABASE {db} CHARACTER SET utf8mb4")).await.unwrap();
    for t in ["tracked", "excluded"] {
        w.query_drop(format!(
            "CREATE TABLE {db}.{t} (id INT PRIMARY KEY, a INT, b INT, v INT AS (a + b) VIRTUAL, s VARCHAR(40) AS (CONCAT(a, '-', b)) STORED)"
        ))
        .await
        .unwrap();
        w.query_drop(format!("INSERT INTO {db}.{t} (id, a, b) VALUES (1, 1, 2), (2, 3, 4), (3, 5, 6)")).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let tables = serde_json::json!([
        {"source": format!("{db}.tracked")},
        {"source": format!("{db}.excluded"), "exclude_columns": ["v", "s"]},
    ]);
    let ch_db = format!("{db}_ch");
    let spec = spec(&db, flavor, tables, &ch_db, "snapshot_and_cdc");
    // `sluice check` warns before: the tracked table's generated columns, with the fix; not the excluded one.
    let path = dir.path().join("check.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "--config"]).arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "warnings only:\n{text}");
    let warned: Vec<&str> = text.lines().filter(|l| l.contains("generated column(s)")).collect();
    assert!(warned.len() == 1 && warned[0].contains("WARN") && warned[0].contains("tracked") && warned[0].contains("v, s"), "{text}");
    assert!(text.contains("exclude_columns"), "{text}");
    let run = SluiceRun::start(dir.path(), &spec);
    eventually_logged(CONVERGE, || run.log(), "→ Running").await;
    for t in ["tracked", "excluded"] {
        w.query_drop(format!("INSERT INTO {db}.{t} (id, a, b) VALUES (4, 7, 8)")).await.unwrap();
        w.query_drop(format!("UPDATE {db}.{t} SET a = a * 10 WHERE id <= 2")).await.unwrap();
        w.query_drop(format!("DELETE FROM {db}.{t} WHERE id = 3")).await.unwrap();
    }
    eventually(CONVERGE, || async {
        let log = run.log();
        if log.contains("generated column(s) v, s") && log.contains("exclude_columns") && log.contains("tracked") {
            Ok(())
        } else {
            Err(format!("no error naming the generated columns; log:\n{}", tail(&log)))
        }
    })
    .await;
    eventually(CONVERGE, || async {
        let mut c = mysql(flavor).await;
        let src = src_rows(&mut c, &format!("SELECT id, a, b FROM {db}.excluded ORDER BY id")).await;
        let dst = ch_rows(&format!("SELECT id, a, b FROM `{ch_db}`.excluded FINAL WHERE _peerdb_is_deleted = 0 ORDER BY id")).await?;
        diff(&src, &dst)
    })
    .await;
    let cols =
        ch_rows(&format!("SELECT name FROM system.columns WHERE database = '{ch_db}' AND table = 'excluded' AND name IN ('v', 's')"))
            .await
            .unwrap();
    assert!(cols.is_empty(), "excluded columns exist in ClickHouse: {cols:?}");
}
