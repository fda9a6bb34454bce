//! Postgres databases for catalogs: creating and dropping one on a server
//! (test beds, `sluice catalog migrate` targets), and naming a database in a
//! server URL. The catalog itself never creates its database: `open_url`
//! expects it to exist, as an administrator would provide it.

use crate::{redact_url, CatalogError};
use sqlx::{Connection, PgConnection};

type Result<T> = std::result::Result<T, CatalogError>;

/// `url` (`postgres://USER:PASSWORD@HOST:PORT/DB?PARAMS`) with its database
/// replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> Result<String> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Err(CatalogError::Url(format!("{:?} is not a postgres:// URL", redact_url(url))));
    };
    let (main, query) = match url[scheme_end..].find('?') {
        Some(q) => (&url[..scheme_end + q], &url[scheme_end + q..]),
        None => (url, ""),
    };
    // The path starts at the first '/' after the host (after any '@').
    let host_start = main[scheme_end..].rfind('@').map(|a| scheme_end + a + 1).unwrap_or(scheme_end);
    let base = match main[host_start..].find('/') {
        Some(p) => &main[..host_start + p],
        None => main,
    };
    Ok(format!("{base}/{database}{query}"))
}

/// Whether `name` can be used unquoted-safe inside double quotes (letters,
/// digits, underscores): database names here come from tests and tools.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(CatalogError::Url(format!("{name:?} is not a usable database name (letters, digits, _; at most 63)")));
    }
    Ok(())
}

/// Drops `database` on the server of `server_url` if it exists (closing its
/// sessions) and creates it empty; returns the URL of the new database.
pub async fn recreate_database(server_url: &str, database: &str) -> Result<String> {
    check_name(database)?;
    let mut admin = PgConnection::connect(server_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))).execute(&mut admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{database}\""))).execute(&mut admin).await?;
    admin.close().await?;
    with_database(server_url, database)
}

/// Drops `database` on the server of `server_url` if it exists (closing its sessions).
pub async fn drop_database(server_url: &str, database: &str) -> Result<()> {
    check_name(database)?;
    let mut admin = PgConnection::connect(server_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))).execute(&mut admin).await?;
    admin.close().await?;
    Ok(())
}

/// The databases on the server of `server_url` whose names start with `prefix`.
pub async fn databases(server_url: &str, prefix: &str) -> Result<Vec<String>> {
    let mut admin = PgConnection::connect(server_url).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname::text, $1) ORDER BY 1")
        .bind(prefix)
        .fetch_all(&mut admin)
        .await?;
    admin.close().await?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(with_database("postgres://u:p@h:1/sluice", "x").unwrap(), "postgres://u:p@h:1/x");
        assert_eq!(with_database("postgres://u:p@h:1", "x").unwrap(), "postgres://u:p@h:1/x");
        assert_eq!(with_database("postgres://u:p/q@h/db?sslmode=disable", "x").unwrap(), "postgres://u:p/q@h/x?sslmode=disable");
        assert!(with_database("nope", "x").is_err());
        assert!(check_name("a-b").is_err() && check_name("ok_1").is_ok());
        assert_eq!(redact_url("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(crate::Backend::of_url("postgresql://h/db").unwrap(), crate::Backend::Postgres);
        assert_eq!(crate::Backend::of_url("sqlite:///tmp/x.db").unwrap(), crate::Backend::Sqlite);
        let e = crate::Backend::of_url("mysql://u:secret@h/db").unwrap_err().to_string();
        assert!(e.contains("sqlite://PATH") && !e.contains("secret"), "{e}");
    }
}
