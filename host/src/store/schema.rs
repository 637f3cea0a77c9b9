//! The schema, brought up to date at start.
//!
//! sqlx's migrator records each applied migration and runs each in a transaction, so a kill in
//! the middle leaves either the old schema or the new one, and the next start finishes the job.
//! The two dialects differ only in how they spell auto-increment keys and byte strings and in
//! the extra tables PostgreSQL needs (files in chunked rows), so there is one file of tables,
//! rewritten for PostgreSQL, and one of PostgreSQL's own.

use std::borrow::Cow;

use sqlx::AnyConnection;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Dialect, StoreError};

/// Every migration, per dialect, in order.
fn migrations(dialect: Dialect) -> Vec<Migration> {
    const TABLES: &str = include_str!("schema/tables.sql");
    let initial: Cow<'static, str> = match dialect {
        Dialect::Sqlite => Cow::Borrowed(TABLES),
        Dialect::Postgres => Cow::Owned(format!(
            "{}\n{}",
            TABLES.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"),
            include_str!("schema/postgres_files.sql")
        )),
    };
    let for_dialect = |sql: &'static str| -> Cow<'static, str> {
        match dialect {
            Dialect::Sqlite => Cow::Borrowed(sql),
            Dialect::Postgres => Cow::Owned(
                sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
                    .replace(" BLOB", " BYTEA"),
            ),
        }
    };
    vec![
        Migration::new(
            1,
            Cow::Borrowed("initial"),
            MigrationType::Simple,
            initial,
            false,
        ),
        Migration::new(
            2,
            Cow::Borrowed("status messages"),
            MigrationType::Simple,
            for_dialect(include_str!("schema/status_messages.sql")),
            false,
        ),
        Migration::new(
            3,
            Cow::Borrowed("inline files"),
            MigrationType::Simple,
            for_dialect(include_str!("schema/inline_files.sql")),
            false,
        ),
    ]
}

/// Applies what is missing.
pub(super) async fn migrate(
    connection: &mut AnyConnection,
    dialect: Dialect,
) -> Result<(), StoreError> {
    let migrator = Migrator {
        migrations: Cow::Owned(migrations(dialect)),
        ..Migrator::DEFAULT
    };
    migrator.run(connection).await?;
    Ok(())
}
