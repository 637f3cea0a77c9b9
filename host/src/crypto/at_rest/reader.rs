//! Random-access reading of a blob stored by [`super::EncryptedBlobStore`].

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use openssl::symm::Mode;

use super::{CHUNK, FULL_CHUNK_HEADER, TRAILER};
use crate::crypto::BusinessCertificate;
use crate::crypto::aes_cbc;
use crate::crypto::cms::{CmsError, ContentKey, open};
use crate::crypto::der::{decode_header, tag};

const BLOCK: u64 = 16;
const CHUNK_U64: u64 = CHUNK as u64;
const FULL_CHUNK_SPAN: u64 = CHUNK_U64 + FULL_CHUNK_HEADER.len() as u64;

/// Decrypts the window of the content around the read position, one chunk at most.
pub(super) struct DecryptingReader<R> {
    inner: R,
    key: ContentKey,
    /// Where the first chunk's header starts.
    chunks_start: u64,
    full_chunks: u64,
    last_header_length: u64,
    last_length: u64,
    plain_length: u64,
    position: u64,
    window: Vec<u8>,
    window_start: u64,
}

fn corrupt(reason: &str) -> CmsError {
    CmsError::Invalid(format!("not in the at-rest layout or corrupted: {reason}"))
}

impl<R: Read + Seek> DecryptingReader<R> {
    pub(super) fn open(mut inner: R, certificate: &BusinessCertificate) -> Result<Self, CmsError> {
        let (chunks_start, key, content) = {
            let opened = open(BufReader::new(&mut inner), certificate)?;
            (opened.ber.position(), opened.key, opened.content)
        };
        if content.tag != tag::context_constructed(0) || content.length.is_some() {
            return Err(corrupt("the content is not chunked"));
        }
        let total = inner.seek(SeekFrom::End(0))?;
        let chunk_bytes = total
            .checked_sub(chunks_start + TRAILER.len() as u64)
            .filter(|&bytes| bytes > BLOCK)
            .ok_or_else(|| corrupt("too short"))?;
        // The last chunk's header and content take 18..=CHUNK+5 bytes, less than a full span.
        let full_chunks = (chunk_bytes - 1) / FULL_CHUNK_SPAN;
        let mut reader = Self {
            inner,
            key,
            chunks_start,
            full_chunks,
            last_header_length: 0,
            last_length: 0,
            plain_length: 0,
            position: 0,
            window: Vec::new(),
            window_start: 0,
        };
        let mut header = [0; 5];
        reader.read_file(chunks_start + full_chunks * FULL_CHUNK_SPAN, &mut header)?;
        let (last, header_length) = decode_header(&header)
            .map_err(|_| corrupt("bad last chunk"))?
            .ok_or_else(|| corrupt("bad last chunk"))?;
        let last_length = last.length.unwrap_or(0);
        let consistent = last.tag == tag::OCTET_STRING
            && last_length % BLOCK == 0
            && (BLOCK..=CHUNK_U64).contains(&last_length)
            && full_chunks * FULL_CHUNK_SPAN + header_length as u64 + last_length == chunk_bytes;
        if !consistent {
            return Err(corrupt("chunk lengths do not add up"));
        }
        let mut trailer = [1; TRAILER.len()];
        reader.read_file(total - TRAILER.len() as u64, &mut trailer)?;
        if trailer != TRAILER {
            return Err(corrupt("no end-of-contents"));
        }
        reader.last_header_length = header_length as u64;
        reader.last_length = last_length;
        let cipher_length = full_chunks * CHUNK_U64 + last_length;
        let last_block = reader.decrypt(cipher_length - BLOCK, cipher_length)?;
        let padding = last_block[last_block.len() - 1];
        let padded = (1..=BLOCK as u8).contains(&padding)
            && last_block[BLOCK as usize - padding as usize..]
                .iter()
                .all(|&byte| byte == padding);
        if !padded {
            return Err(CmsError::Invalid(
                "cannot decrypt: wrong key or corrupted content (bad padding)".into(),
            ));
        }
        reader.plain_length = cipher_length - u64::from(padding);
        Ok(reader)
    }

    fn read_file(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(offset))?;
        self.inner.read_exact(buffer)
    }

    /// Where ciphertext byte `offset` lies in the stored file.
    fn file_offset(&self, offset: u64) -> u64 {
        let chunk = offset / CHUNK_U64;
        let header = if chunk < self.full_chunks {
            FULL_CHUNK_HEADER.len() as u64
        } else {
            self.last_header_length
        };
        self.chunks_start + chunk * FULL_CHUNK_SPAN + header + offset % CHUNK_U64
    }

    /// Decrypts ciphertext `start..end` (block-aligned, within one chunk).
    fn decrypt(&mut self, start: u64, end: u64) -> io::Result<Vec<u8>> {
        let mut iv = [0; BLOCK as usize];
        if start == 0 {
            iv.copy_from_slice(&self.key.iv);
        } else {
            self.read_file(self.file_offset(start - BLOCK), &mut iv)?;
        }
        let mut cipher = vec![0; (end - start) as usize];
        self.read_file(self.file_offset(start), &mut cipher)?;
        let mut crypter = aes_cbc::context(self.key.cipher, Mode::Decrypt, &self.key.key, &iv)
            .map_err(io::Error::other)?;
        crypter.set_padding(false);
        let mut plain = vec![0; cipher.len() + BLOCK as usize];
        let produced = crypter
            .cipher_update(&cipher, Some(&mut plain))
            .map_err(io::Error::other)?;
        plain.truncate(produced);
        Ok(plain)
    }

    /// Decrypts from the block holding `position` to the end of its chunk.
    fn fill(&mut self, position: u64) -> io::Result<()> {
        let chunk = position / CHUNK_U64;
        let start = position - position % BLOCK;
        let chunk_end = (chunk + 1) * CHUNK_U64;
        let end = chunk_end.min(self.full_chunks * CHUNK_U64 + self.last_length);
        self.window = self.decrypt(start, end)?;
        self.window_start = start;
        Ok(())
    }
}

impl<R: Read + Seek> Read for DecryptingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.plain_length || buffer.is_empty() {
            return Ok(0);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if !(self.window_start..window_end).contains(&self.position) {
            self.fill(self.position)?;
        }
        let from = (self.position - self.window_start) as usize;
        let available = (self.plain_length - self.position).min((self.window.len() - from) as u64);
        let count = buffer.len().min(available as usize);
        buffer[..count].copy_from_slice(&self.window[from..from + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl<R: Read + Seek> Seek for DecryptingReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.plain_length.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the blob",
            )
        })?;
        Ok(self.position)
    }
}
