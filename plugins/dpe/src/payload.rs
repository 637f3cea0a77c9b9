//! DPE's message body: `{"sbd": {…}, "asic": "…"}`, where `asic` is the CMS-encrypted ASiC-E
//! base64-encoded twice (the real integration point holds the base64 text as bytes and its
//! JSON writer encodes them again, reference §9).
//!
//! Sending, the plugin writes the JSON around the package and the host encodes the package as
//! it streams. Receiving, the plugin reads only the head of the body, up to the start of the
//! `asic` text, and its last bytes, and has the host decode the range between into the
//! package; so the documents never enter the plugin, whatever their size.

use eformidling_sdk::compose::Composer;
use eformidling_sdk::types::Blob;
use serde_json::Value;

/// How much of the head is read at a time while looking for the end of the SBD.
const STEP: u32 = 1024;
/// The largest SBD read; a real one is a few kilobytes.
const MAX_SBD: u64 = 1 << 20;
/// How much of the end of the body is read to find where `asic` ends.
const TAIL: u64 = 64;

/// The body carrying `sbd` and, when there are documents, the encrypted package.
pub fn write<'a>(body: &mut Composer<'a>, sbd: &Value, package: Option<&'a Blob>) {
    body.text("{\"sbd\":").text(&sbd.to_string());
    if let Some(package) = package {
        body.text(",\"asic\":\"").base64(package, 2).text("\"");
    }
    body.text("}");
}

/// What a received body holds.
pub struct Received {
    /// The SBD.
    pub sbd: Value,
    /// The encrypted package, when the message carries one.
    pub package: Option<Blob>,
}

/// Reads a received body held by the host.
pub fn read(body: &Blob) -> Result<Received, String> {
    let size = body.size();
    let mut head: Vec<u8> = Vec::new();
    let (sbd, after_sbd) = loop {
        let chunk = body.read(head.len() as u64, STEP);
        let at_end = chunk.is_empty();
        head.extend_from_slice(&chunk);
        match parse_head(&head) {
            Ok(found) => break found,
            Err(Incomplete::NeedMore) if !at_end && (head.len() as u64) < MAX_SBD => {}
            Err(Incomplete::NeedMore) => {
                return Err("the body ends, or grows past 1 MiB, before its sbd does".into());
            }
            Err(Incomplete::Invalid(why)) => return Err(why),
        }
    };
    // What follows the SBD (`,"asic":"` and the start of the text) may lie in the next chunk.
    if head.len() - after_sbd < STEP as usize {
        let more = body.read(head.len() as u64, STEP);
        head.extend_from_slice(&more);
    }
    let rest = String::from_utf8_lossy(&head[after_sbd..]).into_owned();
    let rest = rest.trim_start();
    if rest.starts_with('}') {
        return Ok(Received { sbd, package: None });
    }
    let value = rest
        .strip_prefix(',')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("\"asic\""))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix(':'))
        .map(str::trim_start)
        .ok_or("the sbd is not followed by `}` or an `asic` field")?;
    if value.starts_with("null") {
        return Ok(Received { sbd, package: None });
    }
    if !value.starts_with('"') {
        return Err("the asic field is not a string".into());
    }
    let start = head.len() as u64 - (value.len() as u64 - 1);
    let tail_start = size.saturating_sub(TAIL).max(start);
    let tail = body.read(tail_start, TAIL as u32);
    let end = closing_quote(&tail)
        .map(|at| tail_start + at as u64)
        .filter(|&end| end >= start)
        .ok_or("the body does not end with the asic string and `}`")?;
    let package = body.decode_base64(start, end - start, 2)?;
    Ok(Received {
        sbd,
        package: Some(package),
    })
}

enum Incomplete {
    NeedMore,
    Invalid(String),
}

/// The SBD of a body's head, and the offset just after it.
fn parse_head(head: &[u8]) -> Result<(Value, usize), Incomplete> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A chunk may end inside a character; the part before it is enough to go on.
        Err(error) => std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or_default(),
    };
    let trimmed = text.trim_start();
    let Some(after_brace) = trimmed.strip_prefix('{') else {
        return if trimmed.is_empty() {
            Err(Incomplete::NeedMore)
        } else {
            Err(Incomplete::Invalid("the body is not a JSON object".into()))
        };
    };
    let after_key = after_brace.trim_start();
    if after_key.len() < "\"sbd\"".len() {
        return Err(Incomplete::NeedMore);
    }
    let after_key = after_key
        .strip_prefix("\"sbd\"")
        .map(str::trim_start)
        .ok_or_else(|| Incomplete::Invalid("the body does not start with its sbd".into()))?;
    let Some(value) = after_key.strip_prefix(':') else {
        return if after_key.is_empty() {
            Err(Incomplete::NeedMore)
        } else {
            Err(Incomplete::Invalid("`sbd` is not followed by `:`".into()))
        };
    };
    let offset = text.len() - value.len();
    let mut values = serde_json::Deserializer::from_str(value).into_iter::<Value>();
    match values.next() {
        Some(Ok(sbd)) if sbd.is_object() => Ok((sbd, offset + values.byte_offset())),
        Some(Ok(_)) => Err(Incomplete::Invalid("the sbd is not a JSON object".into())),
        Some(Err(error)) if error.is_eof() => Err(Incomplete::NeedMore),
        Some(Err(error)) => Err(Incomplete::Invalid(format!("the sbd is not JSON: {error}"))),
        None => Err(Incomplete::NeedMore),
    }
}

/// Where the string before the final `}` ends, in the last bytes of a body.
fn closing_quote(tail: &[u8]) -> Option<usize> {
    let text = tail.trim_ascii_end().strip_suffix(b"}")?.trim_ascii_end();
    text.strip_suffix(b"\"").map(<[u8]>::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_yields_the_sbd_and_where_it_ends() {
        let body = br#" { "sbd" : {"a":{"b":"}"}} , "asic":"QUJD"}"#;
        let (sbd, end) = parse_head(body).ok().unwrap();
        assert_eq!(sbd["a"]["b"], "}");
        assert_eq!(&body[end..end + 3], b" , ");
        for cut in [0, 3, 8, 15, 20] {
            assert!(
                matches!(parse_head(&body[..cut]), Err(Incomplete::NeedMore)),
                "{cut}"
            );
        }
        for bad in [
            &b"[1]"[..],
            b"{\"asic\":\"x\",\"sbd\":{}}",
            b"{\"sbd\":[1]}",
        ] {
            assert!(matches!(parse_head(bad), Err(Incomplete::Invalid(_))));
        }
    }

    #[test]
    fn the_closing_quote_is_found_before_the_final_brace() {
        assert_eq!(closing_quote(b"QUJD\"}"), Some(4));
        assert_eq!(closing_quote(b"QUJD\" }\n"), Some(4));
        assert_eq!(closing_quote(b"QUJD}"), None);
        assert_eq!(closing_quote(b"QUJD\""), None);
    }
}
