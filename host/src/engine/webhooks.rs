//! The webhook deliverer: pushes each subscription's events in order, retrying a failed push with
//! back-off (1 s, tripling, up to 10 min) instead of forgetting it as the real integration point
//! does.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outbox::backoff;
use super::{Engine, pause};
use crate::store::{WebhookEvent, now_millis};

pub(super) async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    while pause(Duration::from_millis(500), &shutdown).await {
        deliver_due(&engine).await;
    }
}

/// Pushes the head event of every subscription whose turn has come.
pub async fn deliver_due(engine: &Engine) {
    let due = match engine.store.due_webhook_events(now_millis()).await {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(%error, "webhook events could not be read");
            return;
        }
    };
    let pushes = due.into_iter().map(|event| push(engine, event));
    futures::future::join_all(pushes).await;
}

async fn push(engine: &Engine, event: WebhookEvent) {
    let answer = engine
        .http
        .post(&event.push_endpoint)
        .header("content-type", "application/json")
        .body(event.payload.clone())
        .send()
        .await;
    let failure = match answer {
        Ok(answer) if answer.status().is_success() => None,
        Ok(answer) => Some(format!("answered {}", answer.status())),
        Err(error) => Some(error.to_string()),
    };
    let outcome = match failure {
        None => engine.store.webhook_delivered(event.id).await,
        Some(reason) => {
            let delay = backoff(
                Duration::from_secs(1),
                Duration::from_secs(600),
                event.attempts,
            )
            .min(Duration::from_secs(600));
            tracing::warn!(endpoint = %event.push_endpoint, %reason, retry_in_s = delay.as_secs(), "a webhook push failed");
            engine
                .store
                .webhook_failed(event.id, now_millis() + delay.as_millis() as i64, &reason)
                .await
        }
    };
    if let Err(error) = outcome {
        tracing::error!(%error, "a webhook delivery could not be recorded");
    }
}
