//! One instance at a time leads each poller.
//!
//! Pollers ask a provider what is new; two instances asking at once would each fetch the same
//! message. On PostgreSQL a poller runs a round only while it holds a session advisory lock named
//! after it (`pg_try_advisory_lock`), which the database frees by itself if the instance dies. An
//! SQLite database has a single instance, which always leads.

use sqlx::Any;
use sqlx::Row as _;
use sqlx::pool::PoolConnection;

use crate::store::{Dialect, Store};

/// Decides who leads.
#[derive(Clone, Debug)]
pub struct Leadership {
    store: Store,
}

/// Held while leading; dropping it ends the lead (the lock is released with the connection's
/// next use or its close).
pub struct Lead {
    held: Option<(PoolConnection<Any>, i64)>,
}

impl Lead {
    /// Ends the lead now.
    pub async fn release(mut self) {
        if let Some((mut connection, key)) = self.held.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *connection)
                .await;
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if let Some((connection, _)) = self.held.take() {
            // Not released in order: close the session so the database frees the lock.
            drop(connection.detach());
        }
    }
}

/// A stable 63-bit key for a poller's name.
fn key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("integrasjonspunkt:{name}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("eight bytes")) & i64::MAX
}

impl Leadership {
    /// Leadership decided in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The lead of poller `name`, when no other instance has it.
    pub async fn try_lead(&self, name: &str) -> Option<Lead> {
        if self.store.dialect() == Dialect::Sqlite {
            return Some(Lead { held: None });
        }
        let key = key(name);
        let mut connection = self.store.pool().acquire().await.ok()?;
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind(key)
            .fetch_one(&mut *connection)
            .await
            .ok()?;
        let locked: bool = row.try_get("locked").ok()?;
        locked.then_some(Lead {
            held: Some((connection, key)),
        })
    }
}
