//! Secret placeholders, for the few protocols that carry a secret inside a body.
//!
//! A plugin never sees a secret. Where a password must sit in a body (a SOAP UsernameToken,
//! Altinn 2's `systemPassword`), the plugin writes a placeholder and the host's egress step
//! replaces it, XML-escaped, in `bytes` bodies and parts, for secrets granted to this plugin.
//! The syntax is part of the WIT contract, so it is spelled in exactly one place.

/// The placeholder the host replaces with the whole secret `name`: `{{secret:NAME}}`.
pub fn secret_placeholder(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// The placeholder the host replaces with one field (`username` or `password`) of the
/// username/password secret `name`: `{{secret:NAME.FIELD}}`.
pub fn secret_field_placeholder(name: &str, field: &str) -> String {
    format!("{{{{secret:{name}.{field}}}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_secret_placeholder_has_the_documented_shape() {
        assert_eq!(secret_placeholder("altinn"), "{{secret:altinn}}");
    }

    #[test]
    fn field_placeholder_names_secret_and_field() {
        assert_eq!(
            secret_field_placeholder("altinn", "password"),
            "{{secret:altinn.password}}"
        );
    }
}
