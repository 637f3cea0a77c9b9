//! Masking of national identity numbers (fødselsnummer) in log lines.
//!
//! A person's 11-digit identity number must not reach a log file or the central log service.
//! Any run of exactly eleven digits keeps its first six (the birth date, useful when tracing) and
//! loses the rest; longer digit runs (message sizes, timestamps in ms) are left alone.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_digit_runs_are_masked_and_others_kept() {
        assert_eq!(
            mask_identity_numbers("receiver 06068512345, org 0192:987654321, size 123456789012"),
            "receiver 060685*****, org 0192:987654321, size 123456789012"
        );
        assert_eq!(mask_identity_numbers("æ06068512345ø"), "æ060685*****ø");
    }
}
