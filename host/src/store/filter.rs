//! Listing filters and paging, turned into SQL with numbered parameters.
//!
//! The API's query parameters map onto columns one to one; this module is the only place that
//! builds SQL text from them, and it only ever adds fixed column names and `$n` placeholders, so
//! no value reaches the SQL text.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row as _};

use super::StoreError;
use super::model::{Direction, Millis, Page, ReceiptStatus};

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(super) enum Value {
    Text(String),
    Int(i64),
}

/// `WHERE` clauses and their values.
#[derive(Debug, Default)]
pub(super) struct Where {
    clauses: Vec<String>,
    pub(super) values: Vec<Value>,
}

impl Where {
    fn next(&self) -> usize {
        self.values.len() + 1
    }

    /// `column = value`.
    pub(super) fn eq_text(&mut self, column: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.clauses.push(format!("{column} = ${}", self.next()));
            self.values.push(Value::Text(value.to_owned()));
        }
    }

    /// `column = value` for a number.
    pub(super) fn eq_int(&mut self, column: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.clauses.push(format!("{column} = ${}", self.next()));
            self.values.push(Value::Int(value));
        }
    }

    /// `column <op> value` for a number.
    pub(super) fn compare_int(&mut self, column: &str, op: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.clauses.push(format!("{column} {op} ${}", self.next()));
            self.values.push(Value::Int(value));
        }
    }

    /// A clause without values.
    pub(super) fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    /// ` WHERE …`, or nothing.
    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The placeholder number the next value will get.
    pub(super) fn placeholder(&self) -> usize {
        self.next()
    }
}

/// Binds `values` in order.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    values: &[Value],
) -> Query<'q, Any, AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text.clone()),
            Value::Int(number) => query.bind(*number),
        };
    }
    query
}

/// One page of `SELECT {columns} FROM {from}` under `filter`, in `page`'s order (ties broken by
/// `tiebreak`), with the count of all matching rows.
pub(super) async fn page_of<T>(
    pool: &AnyPool,
    columns: &str,
    from: &str,
    filter: &Where,
    page: &PageRequest,
    tiebreak: &str,
    row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Page<T>, StoreError> {
    let total: i64 = bind_all(
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {from}{}", filter.sql())),
        &filter.values,
    )
    .fetch_one(pool)
    .await?
    .try_get("n")?;
    let rows = bind_all(
        sqlx::query(&format!(
            "SELECT {columns} FROM {from}{}{}",
            filter.sql(),
            page.sql(tiebreak)
        )),
        &filter.values,
    )
    .fetch_all(pool)
    .await?;
    let items = rows.iter().map(row).collect::<Result<_, _>>()?;
    Ok(Page { items, total })
}

/// Which page, how large, in which order: Spring's `page`, `size` and `sort`.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// The page number, from 0.
    pub page: i64,
    /// Items per page.
    pub size: i64,
    /// The column to sort by (already checked against the listing's columns).
    pub sort_column: &'static str,
    /// Descending when true.
    pub descending: bool,
}

impl PageRequest {
    /// ` ORDER BY … LIMIT … OFFSET …`.
    pub(super) fn sql(&self, tiebreak: &str) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!(
            " ORDER BY {} {direction}, {tiebreak} {direction} LIMIT {} OFFSET {}",
            self.sort_column,
            self.size,
            self.page.saturating_mul(self.size)
        )
    }
}

/// Filters of `GET /api/conversations` (`ConversationQueryInput`).
#[derive(Clone, Debug, Default)]
pub struct ConversationQuery {
    /// The conversation identifier.
    pub conversation_id: Option<String>,
    /// The message identifier.
    pub message_id: Option<String>,
    /// The receiver, qualified.
    pub receiver: Option<String>,
    /// The receiver's identifier.
    pub receiver_identifier: Option<String>,
    /// The sender, qualified.
    pub sender: Option<String>,
    /// The sender's identifier.
    pub sender_identifier: Option<String>,
    /// The service identifier.
    pub service_identifier: Option<String>,
    /// The archive reference.
    pub message_reference: Option<String>,
    /// The title.
    pub message_title: Option<String>,
    /// Polled or not.
    pub pollable: Option<bool>,
    /// Finished or not.
    pub finished: Option<bool>,
    /// The direction.
    pub direction: Option<Direction>,
    /// Last update on or after.
    pub last_update_from: Option<Millis>,
    /// Last update before.
    pub last_update_to: Option<Millis>,
}

impl ConversationQuery {
    pub(super) fn to_where(&self) -> Where {
        let mut w = Where::default();
        w.eq_text("conversation_id", self.conversation_id.as_deref());
        w.eq_text("message_id", self.message_id.as_deref());
        w.eq_text("receiver", self.receiver.as_deref());
        w.eq_text("receiver_identifier", self.receiver_identifier.as_deref());
        w.eq_text("sender", self.sender.as_deref());
        w.eq_text("sender_identifier", self.sender_identifier.as_deref());
        w.eq_text("service_identifier", self.service_identifier.as_deref());
        w.eq_text("message_reference", self.message_reference.as_deref());
        w.eq_text("message_title", self.message_title.as_deref());
        w.eq_int("pollable", self.pollable.map(i64::from));
        w.eq_int("finished", self.finished.map(i64::from));
        w.eq_text("direction", self.direction.map(Direction::as_str));
        w.compare_int("last_update", ">=", self.last_update_from);
        w.compare_int("last_update", "<", self.last_update_to);
        w
    }
}

/// Filters of `GET /api/statuses` (`MessageStatusQueryInput`).
#[derive(Clone, Debug, Default)]
pub struct StatusQuery {
    /// The status row's id.
    pub id: Option<i64>,
    /// The message identifier.
    pub message_id: Option<String>,
    /// The conversation identifier.
    pub conversation_id: Option<String>,
    /// The status.
    pub status: Option<ReceiptStatus>,
    /// Registered on or after.
    pub from: Option<Millis>,
    /// Registered on or before.
    pub to: Option<Millis>,
}

impl StatusQuery {
    pub(super) fn to_where(&self) -> Where {
        let mut w = Where::default();
        w.eq_int("s.id", self.id);
        w.eq_text("c.message_id", self.message_id.as_deref());
        w.eq_text("c.conversation_id", self.conversation_id.as_deref());
        w.eq_text("s.status", self.status.map(ReceiptStatus::as_str));
        w.compare_int("s.last_update", ">=", self.from);
        w.compare_int("s.last_update", "<=", self.to);
        w
    }
}

/// Filters of `GET /api/messages/out` and `/in`.
#[derive(Clone, Debug, Default)]
pub struct MessageQuery {
    /// The conversation identifier.
    pub conversation_id: Option<String>,
    /// The message identifier.
    pub message_id: Option<String>,
    /// The process.
    pub process_identifier: Option<String>,
    /// The receiver.
    pub receiver_identifier: Option<String>,
    /// The sender.
    pub sender_identifier: Option<String>,
    /// The service identifier.
    pub service_identifier: Option<String>,
}

impl MessageQuery {
    pub(super) fn to_where(&self) -> Where {
        let mut w = Where::default();
        w.eq_text("conversation_id", self.conversation_id.as_deref());
        w.eq_text("message_id", self.message_id.as_deref());
        w.eq_text("process_identifier", self.process_identifier.as_deref());
        w.eq_text("receiver_identifier", self.receiver_identifier.as_deref());
        w.eq_text("sender_identifier", self.sender_identifier.as_deref());
        w.eq_text("service_identifier", self.service_identifier.as_deref());
        w
    }
}
