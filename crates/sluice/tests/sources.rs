//! `POST /v1/sources/tables` against the test bed's MySQL 9.7 and MariaDB
//! 10.11 through a real `sluice server`: a keyed table, a keyless one (with the
//! note saying which option includes it), the system schemas left out, the
//! `schemas` filter, the same through an SSH tunnel; a wrong password, a closed port and bad JSON refused with
//! a message naming host:port (or the field) and the cause.

mod common;
use common::*;
use mysql_async::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The `source` of a pipe spec for the test bed server of `flavor`.
fn source_of(flavor: Flavor) -> Value {
    let url = url::Url::parse(flavor.url()).unwrap();
    json!({"host": url.host_str().unwrap(), "port": url.port().unwrap(), "user": url.username(), "password": url.password().unwrap_or("")})
}

fn table<'a>(v: &'a Value, schema: &str, name: &str) -> &'a Value {
    let s = v["schemas"].as_array().unwrap().iter().find(|s| s["name"] == schema).unwrap_or_else(|| panic!("no schema {schema} in {v}"));
    s["tables"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no table {name} in {s}"))
}

async fn lists_tables(flavor: Flavor) {
    let db = unique(&format!("src_{}", flavor.tag()));
    let mut c = mysql(flavor).await;
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.keyed (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, v INT NULL)")).await.unwrap();
    c.query_drop(format!("INSERT INTO {db}.keyed VALUES (1, 'a', NULL), (2, 'b', 3)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.keyless (a INT, b TEXT)")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.by_unique (code CHAR(3) NOT NULL, n INT, UNIQUE KEY u (code))")).await.unwrap();
    c.query_drop(format!("CREATE VIEW {db}.a_view AS SELECT id FROM {db}.keyed")).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let srv = SluiceServer::start(dir.path()).await;
    let source = source_of(flavor);

    // The whole server: system schemas are left out; ours is there.
    let (code, all) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": source}))).await;
    assert_eq!(code, 200, "{all}");
    let names: Vec<&str> = all["schemas"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&db.as_str()), "{names:?}");
    for system in ["mysql", "information_schema", "performance_schema", "sys"] {
        assert!(!names.contains(&system), "system schema {system} listed: {names:?}");
    }

    // One schema.
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": source, "schemas": [db]}))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["schemas"].as_array().unwrap().len(), 1, "{v}");
    assert!(!v["server"].as_str().unwrap().is_empty(), "{v}");
    let tables: Vec<&str> = v["schemas"][0]["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tables, ["by_unique", "keyed", "keyless"], "views are not tables: {v}");

    let keyed = table(&v, &db, "keyed");
    assert_eq!(keyed["has_key"], true, "{keyed}");
    assert_eq!(keyed["replicable"], true, "{keyed}");
    assert_eq!(keyed["key"], json!(["id"]), "{keyed}");
    assert!(keyed["notes"].as_array().unwrap().is_empty(), "{keyed}");
    let cols = keyed["columns"].as_array().unwrap();
    assert_eq!(cols.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), ["id", "name", "v"]);
    assert_eq!((cols[0]["in_key"].clone(), cols[0]["nullable"].clone()), (json!(true), json!(false)), "{keyed}");
    assert_eq!((cols[2]["in_key"].clone(), cols[2]["nullable"].clone()), (json!(false), json!(true)), "{keyed}");
    assert!(cols[1]["source_type"].as_str().unwrap().starts_with("varchar(40)"), "{keyed}");
    assert_eq!(cols[2]["clickhouse_type"], "Nullable(Int32)", "{keyed}");
    assert!(keyed["rows_estimated"].is_u64(), "{keyed}");

    let unique_key = table(&v, &db, "by_unique");
    assert_eq!((unique_key["has_key"].clone(), unique_key["key"].clone()), (json!(true), json!(["code"])), "{unique_key}");

    let keyless = table(&v, &db, "keyless");
    assert_eq!((keyless["has_key"].clone(), keyless["replicable"].clone()), (json!(false), json!(false)), "{keyless}");
    let note = &keyless["notes"][0];
    assert_eq!(note["level"], "error", "{keyless}");
    let text = format!("{} {}", note["message"], note["fix"]);
    assert!(text.contains("key_columns") && text.contains("merge_tree") && text.contains(&format!("{db}.*")), "{text}");

    // The listing describes a schema in three queries; each table comes out as a pipe's Setup describes it alone.
    c.query_drop(format!("CREATE TABLE {db}.latin (id INT, k VARCHAR(8) NOT NULL, t TEXT, PRIMARY KEY (id, k)) DEFAULT CHARSET=latin1"))
        .await
        .unwrap();
    let listed = sluice_source::discovery::describe_schema(&mut c, &db).await.unwrap();
    assert_eq!(
        listed.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["by_unique", "keyed", "keyless", "latin"],
        "views are not tables"
    );
    for (name, table) in listed {
        let alone = sluice_source::discovery::describe(&mut c, &sluice_core::TableId::new(&db, &name)).await.unwrap();
        assert_eq!(table.unwrap(), alone, "{name}");
    }

    // Through the test bed's SSH server (a bastion): the same listing.
    let mut tunneled = source.clone();
    tunneled["ssh"] = json!({"host": "127.0.0.1", "port": testbed_url("SLUICE_TEST_SSH_PORT").parse::<u16>().unwrap(),
        "user": testbed_url("SLUICE_TEST_SSH_USER"), "private_key": std::fs::read_to_string(testbed_url("SLUICE_TEST_SSH_KEY")).unwrap(),
        "known_host_key": testbed_url("SLUICE_TEST_SSH_HOST_KEY")});
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": tunneled, "schemas": [db]}))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(table(&v, &db, "keyed")["key"], json!(["id"]), "{v}");

    // A wrong password: 422 naming host:port and the server's refusal.
    let mut wrong = source.clone();
    wrong["password"] = "certainly-wrong".into();
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": wrong}))).await;
    assert_eq!(code, 422, "{v}");
    let e = v["error"].as_str().unwrap();
    let at = format!("{}:{}", source["host"].as_str().unwrap(), source["port"]);
    assert!(e.contains(&at) && e.contains("Access denied"), "{e}");

    // A closed port: 502 naming host:port and the cause.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut closed = source.clone();
    closed["host"] = "127.0.0.1".into();
    closed["port"] = port.into();
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": closed}))).await;
    assert_eq!(code, 502, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.to_lowercase().contains("refused"), "{e}");

    // Bad JSON names the field; an invalid value names it too; no token → 401.
    let mut bad = source.clone();
    bad["port"] = "three".into();
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": bad}))).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("source.port"), "{v}");
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": source, "schemaz": []}))).await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("schemaz"), "{v}");
    let mut empty = source.clone();
    empty["host"] = "".into();
    let (code, v) = srv.call(Method::POST, "/v1/sources/tables", Some(json!({"source": empty}))).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("source.host"), "{v}");
    let anon = srv.http.post(format!("{}/v1/sources/tables", srv.base())).json(&json!({"source": source})).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    // Registered in the OpenAPI document.
    let (_, doc) = srv.call(Method::GET, "/openapi.json", None).await;
    assert!(doc["paths"]["/v1/sources/tables"]["post"].is_object(), "not in the OpenAPI document");

    c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn source_tables_are_listed_on_mysql() {
    lists_tables(Flavor::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn source_tables_are_listed_on_mariadb() {
    lists_tables(Flavor::MariaDb).await;
}
