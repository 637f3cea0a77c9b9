//! What `/manage/prometheus` reads from the database: conversations counted by their latest
//! status.
//!
//! The count is taken at scrape time from the rows themselves rather than kept in counters, so it
//! is right after a restart, across several instances sharing one PostgreSQL database, and after
//! retention purged old conversations. The latest status is the one registered last (the highest
//! id), which is the order the engine and the API registered them in.

use sqlx::Row as _;

use super::{Store, StoreError};

/// How many conversations stand at one status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageCount {
    /// `OUTGOING` or `INCOMING`.
    pub direction: String,
    /// The service identifier (`DPO`, `DPV`, ...); empty when unknown.
    pub service: String,
    /// The plugin that carries them; empty when not yet routed.
    pub channel: String,
    /// Their latest status (`SENDT`, `LEVERT`, ...).
    pub status: String,
    /// How many.
    pub count: i64,
}

impl Store {
    /// Conversations by direction, service, channel and latest status, in that order.
    pub async fn message_counts(&self) -> Result<Vec<MessageCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.direction AS direction, COALESCE(c.service_identifier, '') AS service, \
             COALESCE(c.channel, '') AS channel, s.status AS status, COUNT(*) AS n \
             FROM conversation c JOIN message_status s ON s.conv_id = c.id \
             WHERE s.id = (SELECT MAX(l.id) FROM message_status l WHERE l.conv_id = c.id) \
             GROUP BY c.direction, c.service_identifier, c.channel, s.status \
             ORDER BY 1, 2, 3, 4",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(MessageCount {
                    direction: row.try_get("direction")?,
                    service: row.try_get("service")?,
                    channel: row.try_get("channel")?,
                    status: row.try_get("status")?,
                    count: row.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Direction, InMessage, NewConversation, ReceiptStatus, StatusEffects, StatusUpdate,
    };

    fn incoming(message_id: &str) -> (InMessage, NewConversation) {
        let message = InMessage {
            message_id: message_id.into(),
            conversation_id: format!("c-{message_id}"),
            process_identifier: None,
            document_type: None,
            sender_identifier: None,
            receiver_identifier: None,
            service_identifier: "DPO".into(),
            channel: "dpo".into(),
            sbd: "{}".into(),
            package_blob: None,
            lock_until: None,
            last_updated: 1,
        };
        let conversation = NewConversation {
            conversation_id: message.conversation_id.clone(),
            message_id: message_id.into(),
            service_identifier: Some("DPO".into()),
            channel: Some("dpo".into()),
            ..NewConversation::default()
        };
        (message, conversation)
    }

    fn count(status: &str, count: i64) -> MessageCount {
        MessageCount {
            direction: "INCOMING".into(),
            service: "DPO".into(),
            channel: "dpo".into(),
            status: status.into(),
            count,
        }
    }

    #[tokio::test]
    async fn conversations_are_counted_once_at_their_latest_status() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.message_counts().await.unwrap(), Vec::new());
        for id in ["m1", "m2", "m3"] {
            let (message, conversation) = incoming(id);
            assert!(store.store_incoming(&message, &conversation).await.unwrap());
        }
        store
            .register_status(
                "m2",
                Direction::Incoming,
                &StatusUpdate::new(ReceiptStatus::InnkommendeLevert),
                StatusEffects::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            store.message_counts().await.unwrap(),
            vec![
                count("INNKOMMENDE_LEVERT", 1),
                count("INNKOMMENDE_MOTTATT", 2)
            ]
        );
        store.close().await;
    }
}
