//! Reading this plugin's settings, with failures an operator can act on.
//!
//! Settings come from the plugin set of the active environment (never secrets). A missing or
//! malformed setting is a configuration mistake, not a property of the message, so it fails
//! as `retry`: the message waits (bounded by its lifetime and the engine's policy) until the
//! operator fixes the environment, and the text names the key so the log says what to fix.

use core::fmt::Display;
use core::str::FromStr;

use crate::bindings::eformidling::transport::{config, types::Failure};

/// The value of `key`; a missing or blank setting fails naming the key.
pub fn required(key: &str) -> Result<String, Failure> {
    require(key, config::get(key))
}

/// The value of `key`, or `default` when it is missing or blank.
pub fn or_default(key: &str, default: &str) -> String {
    present(config::get(key)).unwrap_or_else(|| default.to_owned())
}

/// The value of `key` parsed as `T`, none when it is missing or blank; a value that does not
/// parse fails naming the key and the value.
pub fn parsed<T>(key: &str) -> Result<Option<T>, Failure>
where
    T: FromStr,
    T::Err: Display,
{
    parse(key, config::get(key))
}

fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn require(key: &str, value: Option<String>) -> Result<String, Failure> {
    present(value).ok_or_else(|| Failure::Retry(format!("plugin setting `{key}` is not set")))
}

fn parse<T>(key: &str, value: Option<String>) -> Result<Option<T>, Failure>
where
    T: FromStr,
    T::Err: Display,
{
    present(value)
        .map(|v| {
            v.trim().parse().map_err(|e| {
                Failure::Retry(format!("plugin setting `{key}` = {v:?} is invalid: {e}"))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_blank_required_setting_names_the_key() {
        for value in [None, Some(String::new()), Some("  ".to_owned())] {
            match require("endpoint", value) {
                Err(Failure::Retry(text)) => {
                    assert_eq!(text, "plugin setting `endpoint` is not set");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            require("endpoint", Some("http://x".into())).unwrap(),
            "http://x"
        );
    }

    #[test]
    fn parsed_setting_is_optional_but_must_parse() {
        assert_eq!(parse::<u64>("max", None).unwrap(), None);
        assert_eq!(parse::<u64>("max", Some(" 42 ".into())).unwrap(), Some(42));
        match parse::<u64>("max", Some("lots".into())) {
            Err(Failure::Retry(text)) => {
                assert!(
                    text.starts_with("plugin setting `max` = \"lots\" is invalid"),
                    "{text}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
