//! Reading BER from a stream, for structures too large to hold in memory.
//!
//! A CMS message is a few small structures followed by content of any size. This reader walks
//! the framing one header at a time, copies the small structures into memory under a byte budget
//! (so a hostile length costs an error, not an allocation), and hands the large content out as a
//! stream of segments, whether it is one primitive OCTET STRING (DER, or our own output) or the
//! constructed, chunked form that streaming encoders such as `openssl cms -stream` write.

use std::io::{self, Read};

use super::der::{DerError, Header, MAX_DEPTH, decode_header, tag};

/// A BER reader that knows how far into the stream it is.
pub struct BerReader<R> {
    inner: R,
    position: u64,
}

impl<R: Read> BerReader<R> {
    /// Reads from `inner`, which starts at an element.
    pub fn new(inner: R) -> Self {
        Self { inner, position: 0 }
    }

    /// How many octets have been read.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn fill(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buffer).map_err(|error| {
            if error.kind() == io::ErrorKind::UnexpectedEof {
                invalid(format!("truncated at octet {}", self.position))
            } else {
                error
            }
        })?;
        self.position += buffer.len() as u64;
        Ok(())
    }

    /// Reads the next header, returning it and its raw octets.
    pub fn header(&mut self) -> io::Result<(Header, Vec<u8>)> {
        let mut raw = vec![0; 2];
        self.fill(&mut raw)?;
        loop {
            match decode_header(&raw).map_err(der_error)? {
                Some((header, used)) if used == raw.len() => return Ok((header, raw)),
                Some(_) => return Err(invalid("malformed header".into())),
                None => {
                    // Long form: the second octet says how many length octets follow.
                    let more = usize::from(raw[1] & 0x7F);
                    let start = raw.len();
                    raw.resize(start + more, 0);
                    self.fill(&mut raw[start..])?;
                }
            }
        }
    }

    /// Reads the next header, which must carry `tag`; `what` names it in the error.
    pub fn expect_header(&mut self, tag: u8, what: &str) -> io::Result<Header> {
        let at = self.position;
        let (header, _) = self.header()?;
        if header.tag != tag {
            return Err(invalid(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x} at octet {at}",
                header.tag
            )));
        }
        Ok(header)
    }

    /// Copies the element whose header was just read (header included) into memory, spending at
    /// most `budget` octets in total across calls.
    pub fn capture(
        &mut self,
        header: Header,
        raw: Vec<u8>,
        budget: &mut usize,
    ) -> io::Result<Vec<u8>> {
        let mut out = raw;
        spend(budget, out.len())?;
        self.capture_content(header, &mut out, budget, 0)?;
        Ok(out)
    }

    /// Reads the next element whole into memory under `budget`.
    pub fn capture_next(&mut self, budget: &mut usize) -> io::Result<Vec<u8>> {
        let (header, raw) = self.header()?;
        self.capture(header, raw, budget)
    }

    fn capture_content(
        &mut self,
        header: Header,
        out: &mut Vec<u8>,
        budget: &mut usize,
        depth: usize,
    ) -> io::Result<()> {
        match header.length {
            Some(length) => {
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                spend(budget, length)?;
                let start = out.len();
                out.resize(start + length, 0);
                self.fill(&mut out[start..])
            }
            None => {
                if depth >= MAX_DEPTH {
                    return Err(invalid("nesting too deep".into()));
                }
                loop {
                    let (child, raw) = self.header()?;
                    spend(budget, raw.len())?;
                    out.extend_from_slice(&raw);
                    if child.is_end_of_contents() {
                        return Ok(());
                    }
                    self.capture_content(child, out, budget, depth + 1)?;
                }
            }
        }
    }

    /// Skips `length` octets.
    fn skip(&mut self, length: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(length), &mut io::sink())?;
        self.position += copied;
        if copied < length {
            return Err(invalid(format!("truncated at octet {}", self.position)));
        }
        Ok(())
    }

    /// Reads to the end of the element whose header was just read.
    pub fn skip_content(&mut self, header: Header, depth: usize) -> io::Result<()> {
        match header.length {
            Some(length) => self.skip(length),
            None => {
                if depth >= MAX_DEPTH {
                    return Err(invalid("nesting too deep".into()));
                }
                loop {
                    let (child, _) = self.header()?;
                    if child.is_end_of_contents() {
                        return Ok(());
                    }
                    self.skip_content(child, depth + 1)?;
                }
            }
        }
    }

    /// The content of the OCTET STRING (under any tag) whose header was just read, as a stream.
    pub fn octet_stream(self, header: Header) -> io::Result<OctetStream<R>> {
        let mut stream = OctetStream {
            reader: self,
            frames: Vec::new(),
            segment_left: 0,
        };
        if header.tag & 0x20 == 0 {
            stream.segment_left = header.length.unwrap_or(0);
        } else {
            stream.push_frame(header)?;
        }
        Ok(stream)
    }
}

/// The octets of a possibly constructed OCTET STRING, segment by segment.
pub struct OctetStream<R> {
    reader: BerReader<R>,
    /// Open constructed levels: where each definite one ends, `None` for indefinite ones.
    frames: Vec<Option<u64>>,
    segment_left: u64,
}

impl<R: Read> OctetStream<R> {
    fn push_frame(&mut self, header: Header) -> io::Result<()> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(invalid("nesting too deep".into()));
        }
        let end = match header.length {
            Some(length) => Some(
                self.reader
                    .position()
                    .checked_add(length)
                    .ok_or_else(|| invalid("length overflows".into()))?,
            ),
            None => None,
        };
        self.frames.push(end);
        Ok(())
    }

    /// Moves to the next primitive segment; false once the string has ended.
    fn advance(&mut self) -> io::Result<bool> {
        while self.segment_left == 0 {
            let Some(&frame) = self.frames.last() else {
                return Ok(false);
            };
            let position = self.reader.position();
            if let Some(end) = frame {
                if position == end {
                    self.frames.pop();
                    continue;
                }
                if position > end {
                    return Err(invalid(format!(
                        "segment overruns its container at octet {position}"
                    )));
                }
            }
            let (header, _) = self.reader.header()?;
            match header.tag {
                0 if header.is_end_of_contents() && frame.is_none() => {
                    self.frames.pop();
                }
                tag::OCTET_STRING => self.segment_left = header.length.unwrap_or(0),
                tag::OCTET_STRING_CONSTRUCTED => self.push_frame(header)?,
                other => {
                    return Err(invalid(format!(
                        "expected an OCTET STRING segment, found tag {other:#04x} at octet {position}"
                    )));
                }
            }
            if let Some(end) = frame
                && self.reader.position() + self.segment_left > end
            {
                return Err(invalid(format!(
                    "segment overruns its container at octet {position}"
                )));
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for OctetStream<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() || !self.advance()? {
            return Ok(0);
        }
        let wanted = buffer
            .len()
            .min(usize::try_from(self.segment_left).unwrap_or(usize::MAX));
        let read = self.reader.inner.read(&mut buffer[..wanted])?;
        if read == 0 {
            return Err(invalid(format!(
                "truncated at octet {}",
                self.reader.position
            )));
        }
        self.reader.position += read as u64;
        self.segment_left -= read as u64;
        Ok(read)
    }
}

fn spend(budget: &mut usize, amount: usize) -> io::Result<()> {
    *budget = budget
        .checked_sub(amount)
        .ok_or_else(|| invalid("a structure is larger than this reader accepts".into()))?;
    Ok(())
}

/// An `InvalidData` error carrying `message`.
pub fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn der_error(error: DerError) -> io::Error {
    invalid(error.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut reader = BerReader::new(input);
        let (header, _) = reader.header()?;
        let mut out = Vec::new();
        reader.octet_stream(header)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn streams_primitive_and_chunked_content() {
        assert_eq!(stream_of(&[0x80, 0x03, 1, 2, 3]).unwrap(), [1, 2, 3]);
        let chunked = [
            0xA0, 0x80, 0x04, 0x02, 1, 2, 0x24, 0x03, 0x04, 0x01, 3, 0x04, 0x00, 0x00, 0x00,
        ];
        assert_eq!(stream_of(&chunked).unwrap(), [1, 2, 3]);
        let definite = [0xA0, 0x07, 0x04, 0x02, 1, 2, 0x04, 0x01, 3];
        assert_eq!(stream_of(&definite).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn refuses_broken_framing() {
        let cases: [(&[u8], &str); 4] = [
            (&[0xA0, 0x80, 0x04, 0x05, 1, 2], "truncated"),
            (&[0xA0, 0x03, 0x04, 0x05, 1, 2, 3, 4, 5], "overruns"),
            (
                &[0xA0, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00],
                "expected an OCTET STRING",
            ),
            (&[0xA0, 0x80, 0x04, 0x01, 1], "truncated"),
        ];
        for (input, expected) in cases {
            let message = stream_of(input).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn captures_under_a_budget() {
        let input = [0x30, 0x80, 0x04, 0x02, 1, 2, 0x00, 0x00, 0x05, 0x00];
        let mut reader = BerReader::new(&input[..]);
        let mut budget = 100;
        assert_eq!(reader.capture_next(&mut budget).unwrap(), input[..8]);
        assert_eq!(budget, 92);
        let huge = [0x04, 0x84, 0x7F, 0xFF, 0xFF, 0xFF];
        let mut budget = 1 << 20;
        let message = BerReader::new(&huge[..])
            .capture_next(&mut budget)
            .unwrap_err();
        assert!(message.to_string().contains("larger than"), "{message}");
    }
}
