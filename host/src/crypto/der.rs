//! Just enough ASN.1 for CMS: DER encoding of the small structures we write, and a BER parser
//! for the small structures we read (recipient infos, algorithm identifiers).
//!
//! The parser works on bytes already in memory, which [`super::ber_stream`] captured under a size
//! cap, so hostile input can cost at most that cap; nesting is bounded too, so it cannot recurse
//! without limit. It accepts what BER allows and real senders write (indefinite lengths,
//! constructed OCTET STRINGs) and rejects what CMS never uses (high tag numbers, long length
//! fields) with a message naming the problem.

use std::borrow::Cow;

/// Universal and context tags, as single identifier octets.
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;

    /// `[n]` primitive (IMPLICIT on a primitive type).
    pub const fn context(n: u8) -> u8 {
        0x80 | n
    }

    /// `[n]` constructed (EXPLICIT, or IMPLICIT on a constructed type).
    pub const fn context_constructed(n: u8) -> u8 {
        0xA0 | n
    }
}

/// Object identifiers as the content octets of their DER encoding.
pub mod oid {
    pub const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
    pub const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
    pub const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
    pub const SIGNING_TIME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05];
    /// id-aa-signingCertificateV2 (RFC 5035).
    pub const SIGNING_CERTIFICATE_V2: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x2F,
    ];
    pub const SHA256_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    pub const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    pub const ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    pub const RSAES_OAEP: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x07];
    pub const MGF1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08];
    pub const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const AES128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
    pub const AES192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
    pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];

    /// Dotted text of an OID's content octets, for error messages.
    pub fn text(content: &[u8]) -> String {
        let mut arcs: Vec<u128> = Vec::new();
        let mut value: u128 = 0;
        for &byte in content {
            value = (value << 7) | u128::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (value / 40).min(2);
                    arcs.push(first);
                    arcs.push(value - first * 40);
                } else {
                    arcs.push(value);
                }
                value = 0;
            }
            if value > u128::from(u64::MAX) {
                return "(malformed OID)".into();
            }
        }
        let parts: Vec<String> = arcs.iter().map(u128::to_string).collect();
        parts.join(".")
    }
}

/// Deeper nesting than this is refused; CMS needs about ten levels.
pub const MAX_DEPTH: usize = 32;

/// A malformed or unsupported encoding.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DerError(pub String);

fn error<T>(message: impl Into<String>) -> Result<T, DerError> {
    Err(DerError(message.into()))
}

/// The DER length octets for `length`.
pub fn length_octets(length: u64) -> Vec<u8> {
    if length < 0x80 {
        return vec![length as u8];
    }
    let bytes = length.to_be_bytes();
    let skip = bytes.iter().take_while(|&&byte| byte == 0).count();
    let mut octets = vec![0x80 | (8 - skip) as u8];
    octets.extend_from_slice(&bytes[skip..]);
    octets
}

/// The identifier and length octets of an element whose content is `length` bytes long.
pub fn header(tag: u8, length: u64) -> Vec<u8> {
    let mut octets = vec![tag];
    octets.extend(length_octets(length));
    octets
}

/// A whole element.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut octets = header(tag, content.len() as u64);
    octets.extend_from_slice(content);
    octets
}

/// A constructed element of the concatenated parts.
pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// An unsigned INTEGER from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&first| first & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tlv(tag::INTEGER, &content)
}

/// The identifier and length of an element, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The identifier octet.
    pub tag: u8,
    /// The content length; `None` for the indefinite form.
    pub length: Option<u64>,
}

impl Header {
    /// Whether this is an end-of-contents marker.
    pub fn is_end_of_contents(&self) -> bool {
        self.tag == 0 && self.length == Some(0)
    }
}

/// Decodes a header from the start of `input`: the header and how many octets it took, or
/// `Ok(None)` if `input` is too short to tell.
pub fn decode_header(input: &[u8]) -> Result<Option<(Header, usize)>, DerError> {
    let Some(&tag) = input.first() else {
        return Ok(None);
    };
    if tag & 0x1F == 0x1F {
        return error(format!(
            "unsupported high tag number (identifier {tag:#04x})"
        ));
    }
    let Some(&first) = input.get(1) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((
            Header {
                tag,
                length: Some(u64::from(first)),
            },
            2,
        )));
    }
    if first == 0x80 {
        if tag & 0x20 == 0 {
            return error(format!(
                "indefinite length on a primitive element (identifier {tag:#04x})"
            ));
        }
        return Ok(Some((Header { tag, length: None }, 2)));
    }
    let count = usize::from(first & 0x7F);
    if count > 8 {
        return error(format!("length field of {count} octets is too long"));
    }
    let Some(octets) = input.get(2..2 + count) else {
        return Ok(None);
    };
    let length = octets
        .iter()
        .fold(0u64, |length, &byte| (length << 8) | u64::from(byte));
    Ok(Some((
        Header {
            tag,
            length: Some(length),
        },
        2 + count,
    )))
}

/// One element parsed from memory.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets (for the indefinite form, without the end-of-contents marker).
    pub content: &'a [u8],
    depth: usize,
}

impl<'a> Element<'a> {
    /// The elements inside a constructed one.
    pub fn children(&self) -> Result<Parser<'a>, DerError> {
        if self.tag & 0x20 == 0 {
            return error(format!(
                "element {:#04x} is primitive, expected constructed",
                self.tag
            ));
        }
        if self.depth >= MAX_DEPTH {
            return error("nesting too deep");
        }
        Ok(Parser {
            input: self.content,
            depth: self.depth + 1,
        })
    }

    /// The octets of an OCTET STRING, primitive or (BER) constructed, under any tag.
    pub fn octets(&self) -> Result<Cow<'a, [u8]>, DerError> {
        if self.tag & 0x20 == 0 {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut octets = Vec::new();
        let mut children = self.children()?;
        while !children.is_empty() {
            let child = children.next_element()?;
            if child.tag != tag::OCTET_STRING && child.tag != tag::OCTET_STRING_CONSTRUCTED {
                return error(format!("OCTET STRING segment with tag {:#04x}", child.tag));
            }
            octets.extend_from_slice(&child.octets()?);
        }
        Ok(Cow::Owned(octets))
    }
}

/// Reads successive elements from bytes in memory.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    input: &'a [u8],
    depth: usize,
}

impl<'a> Parser<'a> {
    /// A parser over `input`, which holds one or more whole elements.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, depth: 0 }
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn next_element(&mut self) -> Result<Element<'a>, DerError> {
        let (element, used) = self.split(self.input, self.depth)?;
        self.input = &self.input[used..];
        Ok(element)
    }

    /// The next element, which must carry `tag`; `what` names it in the error.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Element<'a>, DerError> {
        match self.peek_tag() {
            Some(found) if found == tag => self.next_element(),
            Some(found) => error(format!(
                "{what}: expected tag {tag:#04x}, found {found:#04x}"
            )),
            None => error(format!("{what}: missing")),
        }
    }

    /// The next element if it carries `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.next_element().map(Some)
        } else {
            Ok(None)
        }
    }

    fn split(&self, input: &'a [u8], depth: usize) -> Result<(Element<'a>, usize), DerError> {
        let Some((header, used)) = decode_header(input)? else {
            return error("truncated element");
        };
        if header.is_end_of_contents() {
            return error("unexpected end-of-contents marker");
        }
        let rest = &input[used..];
        match header.length {
            Some(length) => {
                let length = usize::try_from(length)
                    .ok()
                    .filter(|&length| length <= rest.len())
                    .ok_or_else(|| DerError("element longer than its container".into()))?;
                let element = Element {
                    tag: header.tag,
                    content: &rest[..length],
                    depth,
                };
                Ok((element, used + length))
            }
            None => {
                if depth >= MAX_DEPTH {
                    return error("nesting too deep");
                }
                // Find the end-of-contents marker by skipping whole children.
                let mut offset = 0;
                loop {
                    match decode_header(&rest[offset..])? {
                        Some((child, 2)) if child.is_end_of_contents() => {
                            let element = Element {
                                tag: header.tag,
                                content: &rest[..offset],
                                depth,
                            };
                            return Ok((element, used + offset + 2));
                        }
                        Some(_) => offset += self.split(&rest[offset..], depth + 1)?.1,
                        None => return error("indefinite-length element without its end"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(length_octets(0x7F), [0x7F]);
        assert_eq!(length_octets(0x80), [0x81, 0x80]);
        assert_eq!(length_octets(0x1_0000), [0x83, 0x01, 0x00, 0x00]);
        assert_eq!(length_octets(1 << 40), [0x86, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn integers_are_unsigned_and_minimal() {
        assert_eq!(unsigned_integer(&[0, 0, 0x7F]), [0x02, 0x01, 0x7F]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[]), [0x02, 0x01, 0x00]);
    }

    #[test]
    fn parses_indefinite_lengths_and_constructed_octet_strings() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" }, NULL }
        let input = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x05,
            0x00, 0x00, 0x00,
        ];
        let mut parser = Parser::new(&input);
        let sequence = parser.expect(tag::SEQUENCE, "sequence").unwrap();
        assert!(parser.is_empty());
        let mut children = sequence.children().unwrap();
        let octets = children.next_element().unwrap();
        assert_eq!(&*octets.octets().unwrap(), b"abc");
        children.expect(tag::NULL, "null").unwrap();
        assert!(children.is_empty());
    }

    #[test]
    fn refuses_hostile_encodings() {
        let cases: [(&[u8], &str); 5] = [
            (&[0x30, 0x05, 0x04, 0x01], "longer than its container"),
            (&[0x30, 0x80, 0x05, 0x00], "without its end"),
            (&[0x04, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9], "too long"),
            (&[0x1F, 0x01, 0x00], "high tag"),
            (&[0x04, 0x80, 0x00, 0x00], "primitive"),
        ];
        for (input, expected) in cases {
            let message = Parser::new(input).next_element().unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
        }
        let mut deep = [0x30, 0x80].repeat(MAX_DEPTH + 2);
        deep.extend([0x00, 0x00].repeat(MAX_DEPTH + 2));
        let message = Parser::new(&deep).next_element().unwrap_err().to_string();
        assert!(message.contains("too deep"), "{message}");
    }

    #[test]
    fn prints_oids() {
        assert_eq!(oid::text(oid::AES256_CBC), "2.16.840.1.101.3.4.1.42");
        assert_eq!(oid::text(oid::SHA1), "1.3.14.3.2.26");
    }
}
