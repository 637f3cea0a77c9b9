//! Webhook subscriptions and the durable outbox of their events.
//!
//! The real integration point pushes each event once and forgets it when the push fails. Here an
//! event is a row written in the transaction that registers its status; a deliverer pushes the
//! oldest event of each subscription, retries it with back-off, and only then moves on, so a
//! subscriber sees every event, in order, even across an outage or a restart.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::filter::PageRequest;
use super::model::*;
use super::{Store, StoreError};
use crate::timefmt;

const SUBSCRIPTION_COLUMNS: &str = "id, name, push_endpoint, resource, event, filter";

fn subscription_from(row: &AnyRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        push_endpoint: row.try_get("push_endpoint")?,
        resource: row.try_get("resource")?,
        event: row.try_get("event")?,
        filter: row.try_get("filter")?,
    })
}

/// A parsed subscription filter: `key=value[,value…]` parts joined by `&`, keys `status`,
/// `serviceIdentifier` and `direction`, values compared without regard to case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter(Vec<(FilterKey, Vec<String>)>);

/// What a filter part tests.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FilterKey {
    Status,
    ServiceIdentifier,
    Direction,
}

impl EventFilter {
    /// Parses a filter; the error names the part that is wrong, as `WebhookUnknownFilter` does.
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(Self::default());
        };
        let mut parts = Vec::new();
        for part in text.split('&') {
            let (key, values) = part
                .split_once('=')
                .ok_or_else(|| format!("Unknown filter: {part:?} is not key=value"))?;
            let key = match key.trim() {
                "status" => FilterKey::Status,
                "serviceIdentifier" => FilterKey::ServiceIdentifier,
                "direction" => FilterKey::Direction,
                other => return Err(format!("Unknown filter key: {other:?}")),
            };
            let values: Vec<String> = values
                .split(',')
                .map(|value| value.trim().to_ascii_uppercase())
                .filter(|value| !value.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!("Filter {part:?} has no value"));
            }
            for value in &values {
                let known = match key {
                    FilterKey::Status => value.parse::<ReceiptStatus>().is_ok(),
                    FilterKey::Direction => value.parse::<Direction>().is_ok(),
                    FilterKey::ServiceIdentifier => true,
                };
                if !known {
                    return Err(format!("Unknown filter value: {value:?}"));
                }
            }
            parts.push((key, values));
        }
        Ok(Self(parts))
    }

    /// Whether every part matches `status`.
    pub fn matches(&self, status: &MessageStatus) -> bool {
        self.0.iter().all(|(key, values)| {
            let actual = match key {
                FilterKey::Status => status.status.as_str().to_owned(),
                FilterKey::Direction => status.direction.as_str().to_owned(),
                FilterKey::ServiceIdentifier => status
                    .service_identifier
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
            };
            values.contains(&actual)
        })
    }
}

/// The JSON the real integration point pushes for a status.
pub fn status_event_payload(status: &MessageStatus) -> String {
    let mut event = serde_json::json!({
        "createdTs": timefmt::format_millis(status.last_update),
        "resource": "messages",
        "event": "status",
        "messageId": status.message_id,
        "conversationId": status.conversation_id,
        "direction": status.direction.as_str(),
        "status": status.status.as_str(),
    });
    if let Some(service) = &status.service_identifier {
        event["serviceIdentifier"] = service.clone().into();
    }
    if let Some(description) = &status.description {
        event["description"] = description.clone().into();
    }
    event.to_string()
}

/// Every subscription, as [`subscription_from`] reads it.
pub(super) const SELECT_SUBSCRIPTIONS: &str =
    "SELECT id, name, push_endpoint, resource, event, filter FROM subscription";

/// An event for subscription `$1` with payload `$2`, due at its creation `$3`.
pub(super) const INSERT_EVENT: &str = "INSERT INTO webhook_event \
    (subscription_id, payload, attempts, next_attempt_at, created) VALUES ($1, $2, 0, $3, $3)";

/// Whether `subscription` wants an event for `status`.
pub(super) fn wants(subscription: &Subscription, status: &MessageStatus) -> bool {
    matches!(subscription.resource.as_str(), "all" | "messages")
        && matches!(subscription.event.as_str(), "all" | "status")
        && EventFilter::parse(subscription.filter.as_deref())
            .is_ok_and(|filter| filter.matches(status))
}

/// Writes an event for `status` to every subscription that wants it, inside `tx`.
pub(super) async fn enqueue_events(
    tx: &mut Transaction<'_, Any>,
    status: &MessageStatus,
) -> Result<(), StoreError> {
    let subscriptions = sqlx::query(SELECT_SUBSCRIPTIONS)
        .fetch_all(&mut **tx)
        .await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let payload = status_event_payload(status);
    for row in &subscriptions {
        let subscription = subscription_from(row)?;
        if wants(&subscription, status) {
            sqlx::query(INSERT_EVENT)
                .bind(subscription.id)
                .bind(&payload)
                .bind(now_millis())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Creates a subscription; fails with [`StoreError::Duplicate`] when its name and endpoint
    /// are taken.
    pub async fn create_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<Subscription, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO subscription (name, push_endpoint, resource, event, filter) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, push_endpoint) DO NOTHING \
             RETURNING {SUBSCRIPTION_COLUMNS}"
        ))
        .bind(&subscription.name)
        .bind(&subscription.push_endpoint)
        .bind(&subscription.resource)
        .bind(&subscription.event)
        .bind(&subscription.filter)
        .fetch_optional(&mut *self.write_connection().await?)
        .await?;
        match row {
            Some(row) => Ok(subscription_from(&row)?),
            None => Err(StoreError::Duplicate(format!(
                "A subscription named {:?} for {} exists already",
                subscription.name, subscription.push_endpoint
            ))),
        }
    }

    /// Replaces subscription `id`; false when there is none.
    pub async fn update_subscription(
        &self,
        id: i64,
        subscription: &Subscription,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE subscription SET name = $1, push_endpoint = $2, resource = $3, event = $4, \
             filter = $5 WHERE id = $6",
        )
        .bind(&subscription.name)
        .bind(&subscription.push_endpoint)
        .bind(&subscription.resource)
        .bind(&subscription.event)
        .bind(&subscription.filter)
        .bind(id)
        .execute(&mut *self.write_connection().await?)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(format!(
                    "A subscription named {:?} for {} exists already",
                    subscription.name, subscription.push_endpoint
                ))
            }
            _ => StoreError::Database(error),
        })?;
        Ok(updated.rows_affected() > 0)
    }

    /// Subscription `id`.
    pub async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(subscription_from).transpose()?)
    }

    /// A page of subscriptions.
    pub async fn subscriptions(
        &self,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM subscription")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription{}",
            page.sql("id")
        ))
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(subscription_from)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total })
    }

    /// Deletes subscription `id` with its pending events; false when there was none.
    pub async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        sqlx::query("DELETE FROM webhook_event WHERE subscription_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM subscription WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Deletes every subscription and their pending events.
    pub async fn delete_all_subscriptions(&self) -> Result<(), StoreError> {
        let mut writer = self.write_connection().await?;
        let mut tx = writer.begin().await?;
        sqlx::query("DELETE FROM webhook_event")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subscription")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The oldest pending event of each subscription whose turn has come.
    pub async fn due_webhook_events(&self, now: Millis) -> Result<Vec<WebhookEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.subscription_id, s.push_endpoint, e.payload, e.attempts \
             FROM webhook_event e JOIN subscription s ON s.id = e.subscription_id \
             WHERE e.id IN (SELECT MIN(id) FROM webhook_event GROUP BY subscription_id) \
             AND e.next_attempt_at <= $1 ORDER BY e.id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WebhookEvent {
                    id: row.try_get("id")?,
                    subscription_id: row.try_get("subscription_id")?,
                    push_endpoint: row.try_get("push_endpoint")?,
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Removes a delivered event.
    pub async fn webhook_delivered(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_event WHERE id = $1")
            .bind(id)
            .execute(&mut *self.write_connection().await?)
            .await?;
        Ok(())
    }

    /// Records a failed push; the event is due again at `next_attempt_at`.
    pub async fn webhook_failed(
        &self,
        id: i64,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_event SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
             WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&mut *self.write_connection().await?)
        .await?;
        Ok(())
    }
}
