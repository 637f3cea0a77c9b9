//! Taking the file out of an MTOM download without reading it.
//!
//! `DownloadFileStreamedBasic` answers with an MTOM message: a `multipart/related` body whose
//! first part is the SOAP envelope and whose second part is the file. The host streams the
//! whole answer into a blob; this module reads only its head (the envelope and the file part's
//! headers) and its tail (the closing delimiter) and asks the host for the bytes in between as
//! a new blob, so a file of a gigabyte never enters the sandbox.

use eformidling_sdk::types::{Blob, Failure};

use eformidling_sdk::xml;

/// How much of the start of an answer is read to find the envelope and the file part's
/// headers; an envelope is a few hundred bytes.
const HEAD: u32 = 64 * 1024;
/// How much of the end is read to find the closing delimiter.
const TAIL: u64 = 4 * 1024;

/// The boundary parameter of a multipart content type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Where the root part's content begins and ends in `head`.
fn root_part(head: &[u8], boundary: &str) -> Option<(usize, usize)> {
    let delimiter = format!("--{boundary}");
    let first = find(head, delimiter.as_bytes(), 0)?;
    let start = find(head, b"\r\n\r\n", first)? + 4;
    let end = find(head, format!("\r\n{delimiter}").as_bytes(), start)?;
    Some((start, end))
}

/// Where, in a whole MTOM message of `size` bytes, the attachment the envelope includes
/// begins, and how long it is. `head` is the message's first bytes, `tail` its last.
pub fn attachment_range(head: &[u8], tail: &[u8], size: u64, boundary: &str) -> Option<(u64, u64)> {
    let delimiter = format!("\r\n--{boundary}");
    let (_, root_end) = root_part(head, boundary)?;
    let envelope = String::from_utf8_lossy(&head[..root_end]);
    if xml::contents(&envelope, "Include").is_empty() {
        return None;
    }
    let part_headers = root_end + delimiter.len();
    let content_start = find(head, b"\r\n\r\n", part_headers)? + 4;
    let closing = format!("{delimiter}--");
    let tail_at = rfind(tail, closing.as_bytes())?;
    let content_end = size - tail.len() as u64 + tail_at as u64;
    let content_start = content_start as u64;
    (content_end >= content_start).then(|| (content_start, content_end - content_start))
}

/// The attachment of the MTOM answer `answer` (content type `content_type`) as a new blob.
pub fn attachment(answer: &Blob, content_type: &str) -> Result<Blob, Failure> {
    let boundary = boundary(content_type).ok_or_else(|| {
        Failure::Retry(format!(
            "the broker's download is not a multipart message: {content_type:?}"
        ))
    })?;
    let size = answer.size();
    let head = answer.read(0, HEAD);
    let tail_length = size.min(TAIL);
    let tail = answer.read(size - tail_length, tail_length as u32);
    let (offset, length) = attachment_range(&head, &tail, size, &boundary)
        .ok_or_else(|| Failure::Retry("the broker's download holds no attachment".to_owned()))?;
    Ok(answer.slice(offset, length))
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|i| i + from)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(file: &[u8]) -> Vec<u8> {
        let mut message =
            b"--b1\r\nContent-ID: <root>\r\nContent-Type: application/xop+xml\r\n\r\n\
            <s:Envelope><s:Body><R><xop:Include href=\"cid:f\"/></R></s:Body></s:Envelope>\r\n\
            --b1\r\nContent-ID: <f>\r\nContent-Type: application/octet-stream\r\n\r\n"
                .to_vec();
        message.extend_from_slice(file);
        message.extend_from_slice(b"\r\n--b1--\r\n");
        message
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        assert_eq!(
            boundary("multipart/related; type=\"application/xop+xml\"; boundary=\"uuid:1\"; start=\"<a>\"")
                .as_deref(),
            Some("uuid:1")
        );
        assert_eq!(boundary("text/xml; charset=utf-8"), None);
    }

    #[test]
    fn the_attachment_range_covers_exactly_the_file() {
        let file = b"PK\x03\x04 binary \r\n--b1 not a delimiter \r\n";
        let whole = message(file);
        let tail = &whole[whole.len() - 20..];
        let (offset, length) = attachment_range(&whole, tail, whole.len() as u64, "b1").unwrap();
        assert_eq!(&whole[offset as usize..(offset + length) as usize], file);
    }

    #[test]
    fn a_message_without_an_attachment_has_no_range() {
        let plain = b"--b1\r\nContent-Type: application/xop+xml\r\n\r\n<s:Envelope/>\r\n--b1--\r\n";
        assert_eq!(
            attachment_range(plain, plain, plain.len() as u64, "b1"),
            None
        );
    }
}
