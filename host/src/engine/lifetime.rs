//! The lifetime sweep, the lock release, and retention.
//!
//! Every 30 s, as the real integration point does, conversations whose lifetime ran out before
//! they finished get LEVETID_UTLOPT: an unsent message is dropped with its files, a received one
//! the archive system never took is removed. Peeks whose lock ran out are released, and finished
//! conversations older than the retention policy are deleted with their statuses, and dead
//! letters older than theirs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Engine, pause};
use crate::store::{Direction, ReceiptStatus, StatusEffects, StatusUpdate, now_millis};

const EXPIRED_REASON: &str = "Levetiden for meldingen er utgått. Må sendes på nytt";

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let mut last_retention = 0i64;
    loop {
        let unlock = Duration::from_secs(5).min(engine.settings.lifetime_interval);
        if !pause(unlock, &shutdown).await {
            break;
        }
        let now = now_millis();
        if let Err(error) = engine.store.unlock_expired(now).await {
            tracing::error!(%error, "expired locks could not be released");
        }
        sweep(&engine).await;
        if now - last_retention > 3_600_000 {
            last_retention = now;
            retain(&engine).await;
        }
    }
}

/// Ends every conversation whose lifetime is over.
pub async fn sweep(engine: &Engine) {
    let expired = match engine.store.expired(now_millis(), 500).await {
        Ok(expired) => expired,
        Err(error) => {
            tracing::error!(%error, "expired conversations could not be read");
            return;
        }
    };
    for conversation in expired {
        let service = conversation.service_identifier.as_deref();
        let effects = StatusEffects {
            starts_polling: false,
            queue: engine.queues(service),
        };
        match conversation.direction {
            Direction::Outgoing => {
                let unsent = matches!(
                    engine.store.out_message(&conversation.message_id).await,
                    Ok(Some(_))
                );
                if unsent {
                    // Not to be sent from what was handed over, nor in place of a later
                    // message given its id.
                    engine.handoff.forget(&conversation.message_id);
                    match engine
                        .store
                        .finish_unsent(
                            &conversation.message_id,
                            ReceiptStatus::LevetidUtlopt,
                            EXPIRED_REASON,
                            effects,
                        )
                        .await
                    {
                        Ok(blobs) => engine.remove_blobs(blobs).await,
                        Err(error) => {
                            tracing::error!(message_id = %conversation.message_id, %error, "an expired message could not be ended")
                        }
                    }
                } else {
                    engine
                        .register(
                            &conversation.message_id,
                            Direction::Outgoing,
                            service,
                            &StatusUpdate::new(ReceiptStatus::LevetidUtlopt)
                                .described(EXPIRED_REASON),
                        )
                        .await;
                }
            }
            Direction::Incoming => match engine
                .store
                .discard_incoming(
                    &conversation.message_id,
                    ReceiptStatus::LevetidUtlopt,
                    EXPIRED_REASON,
                )
                .await
            {
                Ok(Some(message)) => {
                    if let Some(package) = message.package_blob {
                        engine.remove_blobs(vec![package]).await;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(message_id = %conversation.message_id, %error, "an expired received message could not be removed")
                }
            },
        }
    }
}

/// Deletes finished conversations and dead letters older than the retention policy.
async fn retain(engine: &Engine) {
    let now = now_millis();
    let before = now - engine.settings.retention.conversations.as_millis() as i64;
    match engine.store.purge_finished(before).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "finished conversations past retention deleted"),
        Err(error) => tracing::error!(%error, "retention could not run"),
    }
    let before = now - engine.settings.retention.dead_letters.as_millis() as i64;
    match engine.store.purge_dead_letters(before).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "dead letters past retention deleted"),
        Err(error) => tracing::error!(%error, "retention could not run"),
    }
}
