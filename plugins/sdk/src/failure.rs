//! Turning what a provider answered into the engine's failure vocabulary.
//!
//! The host's engine decides what happens after a failed call (back off and retry, mark the
//! message failed, check its credentials, refuse an oversized message), so every channel must
//! classify the same outcome the same way. The rules live here, once:
//!
//! | outcome | failure |
//! |---|---|
//! | 408, 429, 5xx, timeout, broken connection | `retry`: the provider may take it later |
//! | 401, 403 | `unauthorized`: the host checks its keys and tokens |
//! | host could not obtain the credentials | `unauthorized`, for the same reason |
//! | 413 | `too-large(limit)`, the limit when the channel knows it, else 0 |
//! | other 4xx, unexpected 1xx-3xx | `reject`, with the status and the start of the body |
//! | egress denied, malformed request, response over the cap | `reject`: repeating it changes nothing |

use crate::bindings::eformidling::transport::{archive, crypto, http, types::Failure};

/// How much of a provider's error body a failure quotes: enough to recognise the error, short
/// enough for a log line and a status description.
const EXCERPT_CHARS: usize = 200;

/// Classifies an HTTP status the request did not expect. `body` is the response body (quoted
/// in a `reject`), `size_limit` the channel's message size limit, if it knows one.
pub fn from_status(status: u16, body: &[u8], size_limit: Option<u64>) -> Failure {
    let excerpt = excerpt(body);
    let detail = if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    };
    match status {
        401 | 403 => Failure::Unauthorized(detail),
        413 => Failure::TooLarge(size_limit.unwrap_or(0)),
        408 | 429 | 500..=599 => Failure::Retry(detail),
        400..=499 => Failure::Reject(detail),
        _ => Failure::Reject(format!("unexpected {detail}")),
    }
}

/// `Ok` when the response has one of the `expected` statuses, else its classification by
/// [`from_status`].
pub fn expect_status(
    response: &http::Response,
    expected: &[u16],
    size_limit: Option<u64>,
) -> Result<(), Failure> {
    if expected.contains(&response.status) {
        Ok(())
    } else {
        Err(from_status(response.status, &response.body, size_limit))
    }
}

/// The start of a body as one line of text: lossy UTF-8, whitespace collapsed, at most
/// 200 characters and an ellipsis.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut words = text.split_whitespace();
    let mut line = String::new();
    if let Some(first) = words.next() {
        line.push_str(first);
        for word in words {
            line.push(' ');
            line.push_str(word);
        }
    }
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => {
            line.truncate(cut);
            line.push('…');
            line
        }
        None => line,
    }
}

impl From<http::Error> for Failure {
    fn from(error: http::Error) -> Self {
        match error {
            http::Error::Timeout => Failure::Retry("the request timed out".to_owned()),
            http::Error::Connection(why) => Failure::Retry(format!("connection failed: {why}")),
            http::Error::Credentials(why) => {
                Failure::Unauthorized(format!("the host could not obtain credentials: {why}"))
            }
            http::Error::Denied(why) => Failure::Reject(format!("egress denied: {why}")),
            http::Error::Invalid(why) => Failure::Reject(format!("invalid request: {why}")),
            http::Error::TooLarge(cap) => {
                Failure::Reject(format!("the response body exceeded {cap} bytes"))
            }
        }
    }
}

impl From<archive::Error> for Failure {
    fn from(error: archive::Error) -> Self {
        match error {
            archive::Error::Io(why) => Failure::Retry(format!("archive storage failed: {why}")),
            archive::Error::Invalid(why) => Failure::Reject(format!("invalid archive: {why}")),
            archive::Error::NotFound(name) => {
                Failure::Reject(format!("archive has no entry {name}"))
            }
        }
    }
}

impl From<crypto::Error> for Failure {
    fn from(error: crypto::Error) -> Self {
        match error {
            crypto::Error::KeyUnavailable(why) => {
                Failure::Retry(format!("the host's keys are unavailable: {why}"))
            }
            crypto::Error::Invalid(why) => Failure::Reject(format!("cryptography failed: {why}")),
            crypto::Error::Unsupported(why) => {
                Failure::Reject(format!("cryptography unsupported: {why}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(failure: &Failure) -> &str {
        match failure {
            Failure::Retry(t) | Failure::Reject(t) | Failure::Unauthorized(t) => t,
            Failure::TooLarge(_) => panic!("no text in {failure:?}"),
        }
    }

    #[test]
    fn server_errors_throttling_and_timeouts_are_retried() {
        for status in [500, 502, 503, 599, 429, 408] {
            let failure = from_status(status, b"busy", None);
            assert!(
                matches!(failure, Failure::Retry(_)),
                "{status}: {failure:?}"
            );
        }
        assert!(matches!(
            Failure::from(http::Error::Timeout),
            Failure::Retry(_)
        ));
        assert!(matches!(
            Failure::from(http::Error::Connection("reset".into())),
            Failure::Retry(_)
        ));
    }

    #[test]
    fn refused_credentials_are_unauthorized() {
        for status in [401, 403] {
            let failure = from_status(status, b"", None);
            assert!(matches!(failure, Failure::Unauthorized(_)), "{failure:?}");
            assert_eq!(text(&failure), format!("HTTP {status}"));
        }
        assert!(matches!(
            Failure::from(http::Error::Credentials("token service down".into())),
            Failure::Unauthorized(_)
        ));
    }

    #[test]
    fn payload_too_large_carries_the_known_limit_or_zero() {
        assert!(matches!(
            from_status(413, b"", Some(1024)),
            Failure::TooLarge(1024)
        ));
        assert!(matches!(from_status(413, b"", None), Failure::TooLarge(0)));
    }

    #[test]
    fn other_client_errors_are_rejected_with_status_and_body() {
        let failure = from_status(400, b"{\"error\":\n  \"bad envelope\"}", None);
        assert!(matches!(failure, Failure::Reject(_)), "{failure:?}");
        assert_eq!(text(&failure), "HTTP 400: {\"error\": \"bad envelope\"}");
        let failure = from_status(302, b"", None);
        assert_eq!(text(&failure), "unexpected HTTP 302");
        assert!(matches!(
            Failure::from(http::Error::Denied("host not allowed".into())),
            Failure::Reject(_)
        ));
    }

    #[test]
    fn expected_statuses_pass() {
        let response = http::Response {
            status: 201,
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert!(expect_status(&response, &[200, 201], None).is_ok());
        assert!(matches!(
            expect_status(&response, &[204], None),
            Err(Failure::Reject(_))
        ));
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(excerpt(b"  a\r\n\tb  "), "a b");
        assert_eq!(excerpt(b""), "");
        let long = "é".repeat(300);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), 201);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(&[0xff, b'x']), "\u{fffd}x");
    }
}
