//! Masking of national identity numbers (fødselsnummer) in log lines.
//!
//! A person's 11-digit identity number must not reach a log file or the central log service.
//! Any run of exactly eleven digits keeps its first six (the birth date, useful when tracing) and
//! loses the rest; longer digit runs (message sizes, timestamps in ms) are left alone.
//! [`MaskingWriter`] applies this to every line the host's log subscriber writes, so no call site
//! has to remember to.

use std::io;

use tracing_subscriber::fmt::MakeWriter;

/// `line` with every standalone 11-digit number masked.
pub fn mask_identity_numbers(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 11 {
                out.push_str(&line[start..start + 6]);
                out.push_str("*****");
            } else {
                out.push_str(&line[start..i]);
            }
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&line[start..i]);
        }
    }
    out
}

/// A log writer that masks identity numbers before passing the text on to the writers `M` makes:
/// `tracing_subscriber::fmt().with_writer(MaskingWriter(std::io::stdout))`.
///
/// The formatter writes each event whole in one call, so a number is never split between two
/// writes and a line is masked as a whole.
#[derive(Clone, Debug)]
pub struct MaskingWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingWriter<M> {
    type Writer = Masking<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Masking(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Masking(self.0.make_writer_for(meta))
    }
}

/// One write's worth of [`MaskingWriter`].
#[derive(Debug)]
pub struct Masking<W>(W);

impl<W: io::Write> io::Write for Masking<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let masked = mask_identity_numbers(&String::from_utf8_lossy(buf));
        self.0.write_all(masked.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a test's log subscriber wrote, through [`MaskingWriter`] as the host's does.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
            let captured = self.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(MaskingWriter(move || captured.clone()))
                .finish()
        }

        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_writer_masks_messages_and_fields() {
        let captured = Captured::default();
        tracing::subscriber::with_default(captured.subscriber(), || {
            tracing::info!(
                receiver = "06068512345",
                "looked up 06068512345 for 0192:987654321"
            );
        });
        let text = captured.text();
        assert!(!text.contains("06068512345"), "{text}");
        assert!(
            text.contains("looked up 060685***** for 0192:987654321"),
            "{text}"
        );
        assert!(text.contains("receiver=\"060685*****\""), "{text}");
    }

    #[test]
    fn eleven_digit_runs_are_masked_and_others_kept() {
        assert_eq!(
            mask_identity_numbers("receiver 06068512345, org 0192:987654321, size 123456789012"),
            "receiver 060685*****, org 0192:987654321, size 123456789012"
        );
        assert_eq!(mask_identity_numbers("æ06068512345ø"), "æ060685*****ø");
    }
}
