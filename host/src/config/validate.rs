//! Checks that need more than one key: the organisation number's check digit, channels that are
//! enabled without a plugin or an endpoint, allow-lists that do not cover a channel's endpoints,
//! secrets a plugin names that nobody defines.

use super::layers::{Layers, Problem};
use super::settings::Settings;
use crate::plugins::AllowList;

/// Whether a 9-digit organisation number passes its mod-11 check.
pub fn organisation_number_is_valid(number: &str) -> bool {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if number.len() != 9 || digits.len() != 9 {
        return false;
    }
    let sum: u32 = WEIGHTS.iter().zip(&digits).map(|(w, d)| w * d).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        check => check,
    };
    check == digits[8]
}

/// Every cross-key problem of `settings`, located through `layers`.
pub fn problems(
    settings: &Settings,
    profile: &str,
    layers: &Layers,
    operator_file: &str,
) -> Vec<Problem> {
    let at = |key: &str| {
        layers
            .source_of(key)
            .map(|source| source.location())
            .unwrap_or_else(|| operator_file.to_owned())
    };
    let problem = |key: &str, reason: String| Problem {
        location: at(key),
        key: key.to_owned(),
        reason,
    };
    let mut problems = Vec::new();

    if settings.environment.name != profile {
        problems.push(problem(
            "environment.name",
            format!(
                "the file describes {:?}, but the profile is {profile:?}",
                settings.environment.name
            ),
        ));
    }
    if !organisation_number_is_valid(&settings.organisation.number) {
        problems.push(problem(
            "organisation.number",
            format!(
                "{:?} is not a valid organisation number (9 digits with a mod-11 check digit)",
                settings.organisation.number
            ),
        ));
    }
    if settings.outbox.concurrency == 0 {
        problems.push(problem(
            "outbox.concurrency",
            "must be at least 1: with no send at a time, nothing is ever sent".into(),
        ));
    }
    for channel in &settings.channels.enabled {
        if !settings.plugins.contains_key(channel) {
            problems.push(problem(
                "channels.enabled",
                format!("channel {channel:?} is enabled, but the environment names no plugin for it ([plugins.{channel}])"),
            ));
        }
        if settings
            .endpoints
            .channels
            .get(channel)
            .is_none_or(|endpoints| endpoints.is_empty())
        {
            problems.push(problem(
                "channels.enabled",
                format!("channel {channel:?} is enabled, but the environment names no endpoint for it ([endpoints.channels.{channel}])"),
            ));
        }
    }
    for (channel, plugin) in &settings.plugins {
        let key = format!("plugins.{channel}.allowed-hosts");
        let allowed = match AllowList::parse(&plugin.allowed_hosts) {
            Ok(allowed) => allowed,
            Err(reason) => {
                problems.push(problem(&key, reason));
                continue;
            }
        };
        for (name, url) in settings
            .endpoints
            .channels
            .get(channel)
            .into_iter()
            .flatten()
        {
            let endpoint_key = format!("endpoints.channels.{channel}.{name}");
            match reqwest::Url::parse(url) {
                Err(error) => problems.push(problem(
                    &endpoint_key,
                    format!("{url:?} is not a URL: {error}"),
                )),
                Ok(parsed) if !allowed.allows(&parsed) => problems.push(problem(
                    &key,
                    format!("does not cover {endpoint_key} = {url:?} (allowed: {allowed})"),
                )),
                Ok(_) => {}
            }
            if plugin.settings.contains_key(name) {
                problems.push(problem(
                    &format!("plugins.{channel}.settings.{name}"),
                    format!("repeats the endpoint {endpoint_key}, which the host passes to the plugin itself"),
                ));
            }
        }
        if !settings.channels.enabled.contains(channel) {
            continue;
        }
        for secret in &plugin.secrets {
            if !settings.secrets.contains_key(secret) {
                problems.push(problem(
                    &format!("plugins.{channel}.secrets"),
                    format!("names {secret:?}, which no [secrets.{secret}] defines"),
                ));
            }
        }
        if let Err(reason) = plugin.limits.validate() {
            problems.push(problem(&format!("plugins.{channel}.limits"), reason));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_numbers_are_checked_with_mod_11() {
        for valid in ["910075918", "910076787", "991825827", "974760673"] {
            assert!(organisation_number_is_valid(valid), "{valid}");
        }
        for invalid in ["910075917", "12345678", "9100759180", "91007591x", ""] {
            assert!(!organisation_number_is_valid(invalid), "{invalid}");
        }
    }
}
