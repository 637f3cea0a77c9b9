//! The per-plugin egress allow-list.
//!
//! Deny by default: an empty list allows nothing. Entries are parsed once when the plugin set is
//! loaded, so a typo fails the load instead of silently blocking (or allowing) traffic later.

use std::fmt;

/// Allowed `scheme://host[:port]` destinations of one plugin.
#[derive(Clone, Debug, Default)]
pub struct AllowList(Vec<Allowed>);

#[derive(Clone, Debug, PartialEq)]
struct Allowed {
    scheme: String,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, Debug, PartialEq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain, not the domain itself.
    Subdomains(String),
}

impl AllowList {
    /// Parses the entries; the error names the bad entry.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| parse_entry(entry))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a request to this URL may go out.
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.0.iter().any(|allowed| {
            allowed.scheme == url.scheme()
                && allowed.port == port
                && match &allowed.host {
                    HostPattern::Exact(exact) => *exact == host,
                    HostPattern::Subdomains(domain) => host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|prefix| !prefix.is_empty()),
                }
        })
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(nothing)");
        }
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|a| match &a.host {
                HostPattern::Exact(host) => format!("{}://{}:{}", a.scheme, host, a.port),
                HostPattern::Subdomains(domain) => format!("{}://*{}:{}", a.scheme, domain, a.port),
            })
            .collect();
        f.write_str(&entries.join(", "))
    }
}

fn parse_entry(entry: &str) -> Result<Allowed, String> {
    let bad = |why: &str| format!("allowed host {entry:?}: {why}");
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host[:port]"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("only scheme, host and port are allowed"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        }
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| bad("the port is not a number"))?,
        None => default_port,
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let pattern = match host.strip_prefix("*.") {
        Some(domain) if !domain.is_empty() && !domain.contains('*') => {
            HostPattern::Subdomains(format!(".{domain}"))
        }
        _ if host.contains('*') => return Err(bad("a wildcard may only stand first, as *.domain")),
        _ => HostPattern::Exact(host),
    };
    Ok(Allowed {
        scheme,
        host: pattern,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(list: &AllowList, url: &str) -> bool {
        list.allows(&reqwest::Url::parse(url).unwrap())
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        assert!(!allows(&list(&[]), "https://www.altinn.no/"));
    }

    #[test]
    fn scheme_host_and_port_must_all_match() {
        let list = list(&[
            "https://www.altinn.no",
            "http://127.0.0.1:7101",
            "https://*.servicebus.windows.net",
        ]);
        assert!(allows(
            &list,
            "https://www.altinn.no/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
        ));
        assert!(allows(&list, "https://WWW.ALTINN.NO:443/x"));
        assert!(!allows(&list, "http://www.altinn.no/"), "other scheme");
        assert!(!allows(&list, "https://www.altinn.no:8443/"), "other port");
        assert!(!allows(&list, "https://altinn.no/"), "other host");
        assert!(
            !allows(&list, "https://www.altinn.no.evil.example/"),
            "suffix trick"
        );
        assert!(allows(&list, "http://127.0.0.1:7101/messages"));
        assert!(!allows(&list, "http://127.0.0.1:7102/messages"));
        assert!(allows(
            &list,
            "https://move-dpe-prod.servicebus.windows.net/q/messages"
        ));
        assert!(
            !allows(&list, "https://servicebus.windows.net/"),
            "the bare domain is not a subdomain"
        );
        assert!(!allows(&list, "https://evilservicebus.windows.net/"));
    }

    #[test]
    fn ipv6_entries_parse() {
        let list = list(&["http://[::1]:8080"]);
        assert!(allows(&list, "http://[::1]:8080/x"));
        assert!(!allows(&list, "http://[::1]:8081/x"));
    }

    #[test]
    fn malformed_entries_are_refused_by_name() {
        for entry in [
            "www.altinn.no",
            "ftp://x",
            "https://x/path",
            "https://x:port",
            "https://a*.b",
            "https://u@x",
        ] {
            let error = AllowList::parse(&[entry.to_string()]).unwrap_err();
            assert!(error.contains(entry), "{error}");
        }
    }
}
