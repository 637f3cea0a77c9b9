//! Faults a test or an operator injects into a running simulator: added latency, a share of
//! error answers, and connections closed without an answer, each for a number of requests or
//! for a time window.
//!
//! A client's retry, timeout and recovery paths are only proven against a peer that misbehaves
//! the way real ones do, at a chosen moment. Every HTTP simulator serves through
//! [`crate::serving`], which applies these rules before the service sees a request; the rules are
//! set from Rust through a [`Faults`] handle or from another process through the control
//! endpoint every service has:
//!
//! | request | answer |
//! |---|---|
//! | `POST /_faults` `{"kind": "latency", "millis": 250, "requests": 3}` | `200` the active rules |
//! | `POST /_faults` `{"kind": "error", "status": 503, "share": 0.5, "seconds": 10}` | `200` the active rules |
//! | `POST /_faults` `{"kind": "drop", "requests": 1}` | `200` the active rules |
//! | `GET /_faults` | `200` the active rules |
//! | `DELETE /_faults` | `204`, every rule removed |
//!
//! A rule limited to `requests` applies to the next that many requests (each request uses one,
//! whether the rule changed its answer or not); one limited to `seconds` applies until the
//! window closes. Rules add up: latency is summed, then a drop wins over an error answer. An
//! error share is spread evenly, not drawn at random, so a test of `share: 0.5` over ten
//! requests sees exactly five errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::serving::lock;

/// What a fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The answer comes `millis` milliseconds later.
    Latency {
        /// The added delay.
        millis: u64,
    },
    /// `share` (0 to 1) of the requests are answered `status` (a 5xx) instead.
    Error {
        /// The status answered.
        status: u16,
        /// The share of requests answered so.
        share: f64,
    },
    /// The connection is closed without an answer.
    Drop,
}

/// How long a fault lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// The next this many requests.
    Requests(u64),
    /// From now, for this long.
    Window(Duration),
}

/// An active rule, as [`Faults::active`] and `GET /_faults` report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveFault {
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// Requests it still applies to, when limited by count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_left: Option<u64>,
    /// Milliseconds until it ends, when limited by time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub millis_left: Option<u64>,
}

/// What the active rules decided for one request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Verdict {
    /// Delay before anything else.
    pub delay: Duration,
    /// Close the connection without an answer.
    pub drop: bool,
    /// Answer this status instead of the service's answer.
    pub status: Option<StatusCode>,
}

/// The fault rules of one service; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    limit: Limit,
    /// Requests this rule has seen, which spreads an error share evenly.
    seen: u64,
}

#[derive(Debug)]
enum Limit {
    Requests(u64),
    Until(Instant),
}

impl Faults {
    /// Applies `fault` for `span`, next to the rules already active. Refuses a fault that
    /// cannot be applied (an error status that is not 5xx, a share outside 0 to 1).
    pub fn add(&self, fault: Fault, span: Span) -> Result<(), String> {
        if let Fault::Error { status, share } = fault {
            if !(500..=599).contains(&status) {
                return Err(format!("status {status} is not a 5xx status"));
            }
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("share {share} is not between 0 and 1"));
            }
        }
        let limit = match span {
            Span::Requests(count) => Limit::Requests(count),
            Span::Window(window) => Limit::Until(Instant::now() + window),
        };
        lock(&self.rules).push(Rule {
            fault,
            limit,
            seen: 0,
        });
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// The rules still in force.
    pub fn active(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        let mut rules = lock(&self.rules);
        rules.retain(|rule| rule.in_force(now));
        rules
            .iter()
            .map(|rule| ActiveFault {
                fault: rule.fault,
                requests_left: match rule.limit {
                    Limit::Requests(left) => Some(left),
                    Limit::Until(_) => None,
                },
                millis_left: match rule.limit {
                    Limit::Requests(_) => None,
                    Limit::Until(end) => Some(end.duration_since(now).as_millis() as u64),
                },
            })
            .collect()
    }

    /// What the rules do to the request arriving now; it counts against every rule in force.
    pub(crate) fn judge(&self) -> Verdict {
        let now = Instant::now();
        let mut rules = lock(&self.rules);
        rules.retain(|rule| rule.in_force(now));
        let mut verdict = Verdict::default();
        for rule in rules.iter_mut() {
            let seen = rule.seen;
            rule.seen += 1;
            if let Limit::Requests(left) = &mut rule.limit {
                *left -= 1;
            }
            match rule.fault {
                Fault::Latency { millis } => verdict.delay += Duration::from_millis(millis),
                Fault::Drop => verdict.drop = true,
                Fault::Error { status, share } => {
                    // Fails request k when the running total of share crosses a whole number.
                    let due = ((seen + 1) as f64 * share).floor() > (seen as f64 * share).floor();
                    if due && verdict.status.is_none() {
                        verdict.status = StatusCode::from_u16(status).ok();
                    }
                }
            }
        }
        rules.retain(|rule| rule.in_force(now));
        verdict
    }
}

impl Rule {
    fn in_force(&self, now: Instant) -> bool {
        match self.limit {
            Limit::Requests(left) => left > 0,
            Limit::Until(end) => now < end,
        }
    }
}

/// The body of `POST /_faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleRequest {
    kind: String,
    millis: Option<u64>,
    status: Option<u16>,
    share: Option<f64>,
    requests: Option<u64>,
    seconds: Option<f64>,
}

impl RuleRequest {
    fn rule(&self) -> Result<(Fault, Span), String> {
        let fault = match self.kind.as_str() {
            "latency" => Fault::Latency {
                millis: self.millis.ok_or("a latency fault needs \"millis\"")?,
            },
            "error" => Fault::Error {
                status: self.status.unwrap_or(503),
                share: self.share.unwrap_or(1.0),
            },
            "drop" => Fault::Drop,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?}; one of \"latency\", \"error\", \"drop\""
                ));
            }
        };
        let span = match (self.requests, self.seconds) {
            (Some(requests), None) => Span::Requests(requests),
            (None, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => {
                Span::Window(Duration::from_secs_f64(seconds))
            }
            (None, Some(seconds)) => return Err(format!("seconds {seconds} is not positive")),
            _ => return Err("give exactly one of \"requests\" and \"seconds\"".to_owned()),
        };
        Ok((fault, span))
    }
}

/// `POST /_faults`.
pub(crate) async fn add_rule(
    State(faults): State<Faults>,
    body: Result<Json<RuleRequest>, JsonRejection>,
) -> Response {
    let added = body
        .map_err(|rejection| rejection.body_text())
        .and_then(|Json(request)| request.rule())
        .and_then(|(fault, span)| faults.add(fault, span));
    match added {
        Ok(()) => Json(faults.active()).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

/// `GET /_faults`.
pub(crate) async fn list_rules(State(faults): State<Faults>) -> Response {
    Json(faults.active()).into_response()
}

/// `DELETE /_faults`.
pub(crate) async fn clear_rules(State(faults): State<Faults>) -> StatusCode {
    faults.clear();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_share_is_spread_evenly_and_a_count_runs_out() {
        let faults = Faults::default();
        faults
            .add(
                Fault::Error {
                    status: 502,
                    share: 0.5,
                },
                Span::Requests(10),
            )
            .unwrap();
        let failed = (0..12).filter(|_| faults.judge().status.is_some()).count();
        assert_eq!(failed, 5);
        assert!(faults.active().is_empty());
    }

    #[test]
    fn rules_add_up_and_bad_ones_are_refused() {
        let faults = Faults::default();
        let latency = Fault::Latency { millis: 20 };
        faults.add(latency, Span::Requests(1)).unwrap();
        faults.add(latency, Span::Requests(2)).unwrap();
        faults.add(Fault::Drop, Span::Requests(1)).unwrap();
        let first = faults.judge();
        assert_eq!((first.delay, first.drop), (Duration::from_millis(40), true));
        assert_eq!(faults.judge().delay, Duration::from_millis(20));
        assert_eq!(faults.judge(), Verdict::default());
        let not_5xx = Fault::Error {
            status: 404,
            share: 1.0,
        };
        assert!(faults.add(not_5xx, Span::Requests(1)).is_err());
    }
}
