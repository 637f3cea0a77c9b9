//! Text bodies that carry documents.
//!
//! Some providers want the documents inside the request text: a SOAP envelope with each
//! attachment base64-encoded in an element, a JSON document with the package in a field. The
//! plugin writes the text and names each document's blob where it goes; the host splices the
//! bytes in (base64-encoded as it streams, as many rounds as asked), so the documents never
//! enter the sandbox and secret placeholders are filled only in the plugin's own text.

use crate::bindings::eformidling::transport::http::{Base64Blob, Segment};
use crate::bindings::eformidling::transport::types::Blob;

/// A composed body under construction: text and blobs, in order.
#[derive(Debug, Default)]
pub struct Composer<'a> {
    segments: Vec<Segment<'a>>,
}

impl<'a> Composer<'a> {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends text (joined to the text before it, so the host gets few segments).
    pub fn text(&mut self, text: &str) -> &mut Self {
        match self.segments.last_mut() {
            Some(Segment::Bytes(bytes)) => bytes.extend_from_slice(text.as_bytes()),
            _ => self.segments.push(Segment::Bytes(text.as_bytes().to_vec())),
        }
        self
    }

    /// Appends a blob's bytes, base64-encoded `rounds` times (1 to 4) by the host.
    pub fn base64(&mut self, blob: &'a Blob, rounds: u8) -> &mut Self {
        self.segments.push(Segment::Base64(Base64Blob {
            content: blob,
            rounds,
        }));
        self
    }

    /// The segments, to send as a body or a multipart part.
    pub fn finish(self) -> Vec<Segment<'a>> {
        self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_text_is_one_segment() {
        let mut body = Composer::new();
        body.text("<a>").text("é</a>");
        let segments = body.finish();
        assert_eq!(segments.len(), 1);
        match &segments[0] {
            Segment::Bytes(bytes) => assert_eq!(bytes, "<a>é</a>".as_bytes()),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Composer::new().finish().is_empty());
    }
}
