//! A PostgreSQL database of a test's own, created on the machine's server and dropped when the
//! test is done, so tests that need PostgreSQL run in parallel and leave nothing behind.
//!
//! The server is `IP_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`). Being
//! unable to reach it fails the test with a message saying so; it never skips: CI expects these
//! tests to run.

use sqlx::{Connection as _, Executor as _};

/// Where PostgreSQL is when `IP_TEST_POSTGRES` does not say.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh database, dropped (with its connections) when this goes.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl FreshDatabase {
    /// Creates a database named `<prefix>_<random>`.
    pub async fn create(prefix: &str) -> Self {
        let admin_url =
            std::env::var("IP_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|error| {
                let context = if std::env::var_os("CI").is_some() {
                    "CI is set: the tests that need PostgreSQL must run"
                } else {
                    "this machine is expected to run PostgreSQL"
                };
                panic!(
                    "PostgreSQL is unreachable at {admin_url} (set IP_TEST_POSTGRES to point \
                     elsewhere): {error}. {context}."
                )
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|error| panic!("CREATE DATABASE {name} on {admin_url}: {error}"));
        admin.close().await.ok();
        let url = database_url(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A test's runtime cannot be blocked on from inside; a thread of its own can.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    admin.execute(sql.as_str()).await.ok();
                    admin.close().await.ok();
                }
            });
        });
        dropper.join().ok();
    }
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_is_replaced_and_the_options_kept() {
        assert_eq!(
            database_url("postgres://u@h:5432/test?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
    }
}
