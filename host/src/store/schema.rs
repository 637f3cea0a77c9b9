//! The schema, brought up to date at start.
//!
//! sqlx's migrator records each applied migration and runs each in a transaction, so a kill in
//! the middle leaves either the old schema or the new one, and the next start finishes the job.
//! The two dialects differ only in how they spell auto-increment keys and which extra tables
//! PostgreSQL needs (files in chunked rows), so each has its own file per version.

use std::borrow::Cow;

use sqlx::AnyPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Dialect, StoreError};

/// Every migration, per dialect, in order.
fn migrations(dialect: Dialect) -> Vec<Migration> {
    let initial = match dialect {
        Dialect::Sqlite => include_str!("schema/sqlite.sql"),
        Dialect::Postgres => include_str!("schema/postgres.sql"),
    };
    vec![Migration::new(
        1,
        Cow::Borrowed("initial"),
        MigrationType::Simple,
        Cow::Borrowed(initial),
        false,
    )]
}

/// Applies what is missing.
pub(super) async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    let migrator = Migrator {
        migrations: Cow::Owned(migrations(dialect)),
        ..Migrator::DEFAULT
    };
    migrator.run(pool).await?;
    Ok(())
}
