//! Percent-encoding for the parts of a URL a plugin builds from data.
//!
//! References, identifiers and message ids come from providers and senders; putting them into a
//! path segment or query value unencoded would let a `/`, `?`, `&` or `#` change which resource
//! is addressed. The guest has no URL crate, and one function is all it needs.

/// Encodes `value` for use as one path segment or one query value: every byte except the
/// RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn encode_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::encode_component;

    #[test]
    fn unreserved_characters_pass_through() {
        assert_eq!(encode_component("Ab9-._~"), "Ab9-._~");
    }

    #[test]
    fn separators_and_non_ascii_are_escaped() {
        assert_eq!(encode_component("0192:987654321"), "0192%3A987654321");
        assert_eq!(encode_component("a/b?c&d#e f"), "a%2Fb%3Fc%26d%23e%20f");
        assert_eq!(encode_component("æ"), "%C3%A6");
    }
}
