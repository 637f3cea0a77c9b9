//! Token requests retried with exponential back-off.
//!
//! A token endpoint that cannot be reached, answers 5xx or asks to slow down (429) is usually
//! back within seconds, and every plugin call waiting for the token waits for the same retries
//! (the cache is single-flight), so the host retries a few times with growing pauses before it
//! gives up. Any other 4xx is an answer about the request itself (an unknown scope or client) and
//! fails at once, since asking again cannot change it.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;

use crate::http_text::{error_chain, excerpt};

/// How often and how patiently a token request is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The most attempts in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; each further pause doubles.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    /// Five attempts over about fifteen seconds.
    fn default() -> Self {
        Self {
            attempts: 5,
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// Worth another attempt, for this reason.
    Transient(String),
    /// Final.
    Final(E),
}

/// A successful or refused answer; 5xx, 429 and transport failures are [`Failure::Transient`].
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends `request` and reads the whole answer; the error is why another attempt may do better.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let response = request.send().await.map_err(|error| error_chain(&error))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| error_chain(&error))?;
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(format!("HTTP {status}: {}", excerpt(&body)));
    }
    Ok(Answer { status, body })
}

/// Runs `attempt` until it succeeds, fails for good, or has failed transiently `attempts` times,
/// when `exhausted(attempts, last reason)` is the error. `what` names the request in warnings.
pub(crate) async fn with_backoff<T, E, A>(
    backoff: &Backoff,
    what: &str,
    mut attempt: impl FnMut() -> A,
    exhausted: impl FnOnce(u32, String) -> E,
) -> Result<T, E>
where
    A: Future<Output = Result<T, Failure<E>>>,
{
    let mut pause = backoff.first;
    let mut attempts = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient(reason)) if attempts >= backoff.attempts => {
                return Err(exhausted(attempts, reason));
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(
                    attempt = attempts,
                    retry_in_ms = pause.as_millis() as u64,
                    %reason,
                    "{what} failed; retrying"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(backoff.max);
                attempts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_with_doubling_pauses_then_gives_up() {
        let backoff = Backoff {
            attempts: 4,
            first: Duration::from_secs(1),
            max: Duration::from_secs(3),
        };
        let start = tokio::time::Instant::now();
        let mut calls = Vec::new();
        let result: Result<(), String> = with_backoff(
            &backoff,
            "test",
            || {
                calls.push(start.elapsed().as_secs());
                async { Err(Failure::Transient("down".into())) }
            },
            |attempts, reason| format!("{attempts} attempts: {reason}"),
        )
        .await;
        assert_eq!(result, Err("4 attempts: down".into()));
        assert_eq!(calls, [0, 1, 3, 6], "pauses of 1, 2 and (capped) 3 seconds");
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_failure_is_not_retried() {
        let mut calls = 0;
        let result: Result<(), String> = with_backoff(
            &Backoff::default(),
            "test",
            || {
                calls += 1;
                async { Err(Failure::Final("refused".to_owned())) }
            },
            |_, reason| reason,
        )
        .await;
        assert_eq!(result, Err("refused".into()));
        assert_eq!(calls, 1);
    }
}
