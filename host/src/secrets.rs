//! Secrets the host holds on behalf of plugins.
//!
//! Plugins never see a secret: they name one, and the egress chokepoint attaches it (Basic, a
//! Service Bus SAS) or fills a placeholder in a body. A secret is only usable by a plugin that the
//! plugin set grants it to. Values are never printed: `Debug` redacts them.

use std::collections::BTreeMap;
use std::fmt;

/// One secret's value.
#[derive(Clone)]
pub enum Secret {
    /// A single value (a password, a system password).
    Value(String),
    /// A username and password (HTTP Basic, a SOAP UsernameToken).
    UsernamePassword {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An Azure shared access key (Service Bus SAS).
    SharedAccessKey {
        /// The key's name (`skn`).
        key_name: String,
        /// The key.
        key: String,
    },
}

impl Secret {
    /// The names of the fields a placeholder may pick, empty for a single value.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Secret::Value(_) => &[],
            Secret::UsernamePassword { .. } => &["username", "password"],
            Secret::SharedAccessKey { .. } => &["key-name", "key"],
        }
    }

    /// The value a placeholder names: the whole secret or one field of it.
    pub fn field(&self, field: Option<&str>) -> Option<&str> {
        match (self, field) {
            (Secret::Value(value), None) => Some(value),
            (Secret::UsernamePassword { username, .. }, Some("username")) => Some(username),
            (Secret::UsernamePassword { password, .. }, Some("password")) => Some(password),
            (Secret::SharedAccessKey { key_name, .. }, Some("key-name")) => Some(key_name),
            (Secret::SharedAccessKey { key, .. }, Some("key")) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Secret::Value(_) => "Value",
            Secret::UsernamePassword { .. } => "UsernamePassword",
            Secret::SharedAccessKey { .. } => "SharedAccessKey",
        };
        write!(f, "{kind}(<redacted>)")
    }
}

/// The host's secrets, by name.
#[derive(Clone, Debug, Default)]
pub struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a secret.
    pub fn insert(&mut self, name: impl Into<String>, secret: Secret) {
        self.0.insert(name.into(), secret);
    }

    /// The secret of that name.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value_and_fields_resolve() {
        let secret = Secret::UsernamePassword {
            username: "system-user".into(),
            password: "hunter2".into(),
        };
        let mut secrets = Secrets::new();
        secrets.insert("altinn", secret.clone());
        let printed = format!("{secrets:?} {secret:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("system-user"),
            "{printed}"
        );
        assert_eq!(secret.field(Some("password")), Some("hunter2"));
        assert_eq!(secret.field(None), None);
        assert_eq!(Secret::Value("v".into()).field(None), Some("v"));
        assert_eq!(Secret::Value("v".into()).field(Some("x")), None);
    }
}
