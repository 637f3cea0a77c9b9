//! The host's cryptography: the business certificate, CMS, ASiC-E and JWS.
//!
//! Everything that needs the organisation's private key happens here, in the host, so that no
//! key ever enters a plugin; plugins ask for these operations through the `crypto` imports and
//! pass documents by blob handle. The CMS and ASiC code streams, because a message's documents
//! may be gigabytes and memory must not grow with them.

mod aes_cbc;
pub mod asic;
pub mod at_rest;
mod ber_stream;
mod cades;
pub mod cms;
mod der;
pub mod jws;
mod key_cache;
pub mod keystore;
mod time;

pub use cades::SignError;
pub use keystore::{BusinessCertificate, ExpiryStatus, KeystoreError};

#[cfg(test)]
pub(crate) mod testpki;

/// Fills `bytes` from the operating system's cryptographic generator (what OpenSSL's own is
/// seeded from). Keys, IVs and multipart boundaries take a few bytes at a time, and OpenSSL 3's
/// `RAND_bytes` passes each request through its provider layers: in the pipeline profile that
/// cost more per call than the system call does.
pub fn random(bytes: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(bytes)
}
