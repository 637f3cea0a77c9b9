//! Secret placeholders in request bodies.
//!
//! Some providers want a secret inside the body (a SOAP UsernameToken, Altinn 2's systemPassword),
//! where no header can carry it. The plugin writes `{{secret:NAME}}` or `{{secret:NAME.FIELD}}`
//! and the chokepoint substitutes the value, XML-escaped because every such body is XML, only for
//! secrets granted to the plugin. A malformed placeholder is an error, never sent as is.

use super::egress::EgressError;

const OPEN: &[u8] = b"{{secret:";
const CLOSE: &[u8] = b"}}";

/// Replaces every placeholder in `bytes` with the value `resolve(name, field)` gives.
pub fn fill(
    bytes: Vec<u8>,
    mut resolve: impl FnMut(&str, Option<&str>) -> Result<String, EgressError>,
) -> Result<Vec<u8>, EgressError> {
    let Some(first) = find(&bytes, OPEN, 0) else {
        return Ok(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len() + 64);
    out.extend_from_slice(&bytes[..first]);
    let mut at = first;
    loop {
        let start = at + OPEN.len();
        let end = find(&bytes, CLOSE, start).ok_or_else(|| {
            EgressError::Invalid("an unterminated {{secret:...}} placeholder".into())
        })?;
        let inner = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| EgressError::Invalid("a placeholder is not text".into()))?;
        let (name, field) = match inner.split_once('.') {
            Some((name, field)) => (name, Some(field)),
            None => (inner, None),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !valid(name) || !field.is_none_or(valid) {
            return Err(EgressError::Invalid(format!(
                "malformed placeholder {{{{secret:{inner}}}}}"
            )));
        }
        out.extend_from_slice(xml_escape(&resolve(name, field)?).as_bytes());
        at = end + CLOSE.len();
        match find(&bytes, OPEN, at) {
            Some(next) => {
                out.extend_from_slice(&bytes[at..next]);
                at = next;
            }
            None => {
                out.extend_from_slice(&bytes[at..]);
                return Ok(out);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| position + from)
}

fn xml_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str, field: Option<&str>) -> Result<String, EgressError> {
        match (name, field) {
            ("system", Some("password")) => Ok("p<&>ss".into()),
            ("system", Some("username")) => Ok("user".into()),
            ("plain", None) => Ok("v".into()),
            _ => Err(EgressError::Denied(format!("{name} not granted"))),
        }
    }

    #[test]
    fn placeholders_are_replaced_xml_escaped_and_the_rest_kept() {
        let body =
            b"<u>{{secret:system.username}}</u><p>{{secret:system.password}}</p>{{secret:plain}}"
                .to_vec();
        let filled = fill(body, resolve).unwrap();
        assert_eq!(
            String::from_utf8(filled).unwrap(),
            "<u>user</u><p>p&lt;&amp;&gt;ss</p>v"
        );
        assert_eq!(
            fill(b"no placeholders {{x}}".to_vec(), resolve).unwrap(),
            b"no placeholders {{x}}"
        );
    }

    #[test]
    fn refusals_and_malformed_placeholders_are_errors() {
        assert_eq!(
            fill(b"a {{secret:other}} b".to_vec(), resolve),
            Err(EgressError::Denied("other not granted".into()))
        );
        for body in [
            "{{secret:system.password",
            "{{secret:}}",
            "{{secret:a b}}",
            "{{secret:a.}}",
        ] {
            assert!(
                matches!(
                    fill(body.as_bytes().to_vec(), resolve),
                    Err(EgressError::Invalid(_))
                ),
                "{body}"
            );
        }
    }
}
