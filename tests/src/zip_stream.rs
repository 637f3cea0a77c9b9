//! Reading a zip front to back as it streams in, so a test can check a document inside a
//! popped ASiC-E of a gigabyte without holding or storing it.
//!
//! The `zip` crate reads a stream only when each local header carries the entry's sizes; the
//! host writes its containers with a streaming writer, which puts the sizes in a data
//! descriptor after each entry instead. A deflated entry ends where its deflate stream ends,
//! and a stored one (the ASiC-E's short `mimetype`) where a data descriptor that matches the
//! bytes before it begins; that is all this needs.

use std::io::{self, BufRead, Read, Write};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// Flag bit 3: the sizes and CRC follow the data.
const HAS_DATA_DESCRIPTOR: u16 = 1 << 3;
/// The zip64 extra field, whose presence makes a data descriptor's sizes 8 bytes each.
const ZIP64_EXTRA: u16 = 0x0001;
/// The longest stored entry with a data descriptor this reads; a container stores only its
/// `mimetype` so.
const MAX_STORED_UNSIZED: usize = 4096;

/// Reads the zip in `reader` to its end, copying the content of entry `wanted` into `out` and
/// everything else to nowhere. The names of the entries, in order.
pub fn read_entries<R: BufRead>(
    mut reader: R,
    wanted: &str,
    out: &mut dyn Write,
) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    loop {
        if u32_le(&mut reader)? != LOCAL_HEADER {
            // The central directory: read it to the end, as a client reads a whole answer.
            io::copy(&mut reader, &mut io::sink())?;
            return Ok(names);
        }
        let mut header = [0u8; 26];
        reader.read_exact(&mut header)?;
        let field = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let flags = field(2);
        let method = field(4);
        let compressed =
            u32::from_le_bytes([header[14], header[15], header[16], header[17]]) as u64;
        let mut name = vec![0u8; usize::from(field(22))];
        reader.read_exact(&mut name)?;
        let mut extra = vec![0u8; usize::from(field(24))];
        reader.read_exact(&mut extra)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let mut nowhere = io::sink();
        let out: &mut dyn Write = if name == wanted {
            &mut *out
        } else {
            &mut nowhere
        };
        let descriptor = flags & HAS_DATA_DESCRIPTOR != 0;
        match (method, descriptor) {
            (DEFLATED, _) => {
                io::copy(&mut flate2::bufread::DeflateDecoder::new(&mut reader), out)?;
                if descriptor {
                    skip_descriptor(&mut reader, has_zip64(&extra))?;
                }
            }
            (STORED, false) => {
                io::copy(&mut (&mut reader).take(compressed), out)?;
            }
            (STORED, true) => out.write_all(&stored_unsized(&mut reader)?)?,
            (other, _) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("entry {name:?} has compression method {other}"),
                ));
            }
        }
        out.flush()?;
        names.push(name);
    }
}

fn u32_le(reader: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn has_zip64(mut extra: &[u8]) -> bool {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        if id == ZIP64_EXTRA {
            return true;
        }
        extra = extra.get(4 + len..).unwrap_or_default();
    }
    false
}

/// Skips a data descriptor: an optional signature, the CRC and the two sizes.
fn skip_descriptor(reader: &mut impl Read, zip64: bool) -> io::Result<()> {
    let first = u32_le(reader)?;
    let rest = if zip64 { 16 } else { 8 } + if first == DATA_DESCRIPTOR { 4 } else { 0 };
    io::copy(&mut reader.take(rest), &mut io::sink())?;
    Ok(())
}

/// The content of a short stored entry whose sizes follow it: it ends where the bytes read
/// end in a signed data descriptor whose CRC and sizes describe the bytes before it.
fn stored_unsized(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    const DESCRIPTOR: usize = 16;
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while bytes.len() < MAX_STORED_UNSIZED + DESCRIPTOR {
        reader.read_exact(&mut byte)?;
        bytes.push(byte[0]);
        let Some(content) = bytes.len().checked_sub(DESCRIPTOR) else {
            continue;
        };
        let tail = &bytes[content..];
        let word =
            |at: usize| u32::from_le_bytes([tail[at], tail[at + 1], tail[at + 2], tail[at + 3]]);
        let size = u32::try_from(content).unwrap_or(u32::MAX);
        if word(0) == DATA_DESCRIPTOR
            && word(4) == crc32fast::hash(&bytes[..content])
            && word(8) == size
            && word(12) == size
        {
            bytes.truncate(content);
            return Ok(bytes);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "a stored entry without sizes is longer than expected",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    const MIMETYPE: &[u8] = b"application/vnd.etsi.asic-e+zip";

    /// A container laid out as the host's streaming writer lays one out.
    fn container(document: &[u8]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new_stream(Vec::new());
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(MIMETYPE).unwrap();
        zip.start_file("vedtak.pdf", deflated).unwrap();
        zip.write_all(document).unwrap();
        zip.start_file("META-INF/manifest.xml", deflated).unwrap();
        zip.write_all(b"<manifest/>").unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_streamed_zip_is_read_entry_by_entry() {
        let document: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let bytes = container(&document);

        let mut found = Vec::new();
        let names = read_entries(bytes.as_slice(), "vedtak.pdf", &mut found).unwrap();
        assert_eq!(names, ["mimetype", "vedtak.pdf", "META-INF/manifest.xml"]);
        assert_eq!(found, document);

        let mut mimetype = Vec::new();
        read_entries(bytes.as_slice(), "mimetype", &mut mimetype).unwrap();
        assert_eq!(mimetype, MIMETYPE);
    }

    #[test]
    fn a_cut_stream_is_an_error() {
        let bytes = container(b"a document");
        let cut = &bytes[..bytes.len() / 2];
        assert!(read_entries(cut, "vedtak.pdf", &mut io::sink()).is_err());
    }
}
