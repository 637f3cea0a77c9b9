//! Content keys this process already holds, so reading a stored blob does not cost an RSA
//! private-key operation each time.
//!
//! Every blob at rest is CMS EnvelopedData whose content key is wrapped to the organisation's
//! own certificate. Unwrapping takes an RSA private-key operation, about a millisecond: more
//! than everything else a small message costs. The writer knows the key it wrapped, and a reader
//! that unwrapped one knows it too; both remember it here, keyed by the SHA-256 of the
//! recipientInfos that carry the wrapped key (shared by the blobs one key sealed), so the next
//! open of any of those blobs skips the RSA step. The cache is bounded; the oldest key goes
//! first. It holds nothing the process could not compute with the private key it already holds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// How many keys are kept: far more than the blobs in flight, 64 bytes each.
const CAPACITY: usize = 16_384;

/// Unwrapped content keys by their recipientInfos.
#[derive(Default)]
pub(crate) struct ContentKeyCache(Mutex<Keys>);

#[derive(Default)]
struct Keys {
    by_recipients: HashMap<[u8; 32], Vec<u8>>,
    order: VecDeque<[u8; 32]>,
}

fn fingerprint(recipient_infos: &[u8]) -> [u8; 32] {
    Sha256::digest(recipient_infos).into()
}

impl ContentKeyCache {
    /// The key `recipient_infos` wraps, when it is remembered.
    pub(crate) fn get(&self, recipient_infos: &[u8]) -> Option<Vec<u8>> {
        let keys = self.0.lock().expect("the content key cache");
        keys.by_recipients
            .get(&fingerprint(recipient_infos))
            .cloned()
    }

    /// Remembers that `recipient_infos` wraps `key`.
    pub(crate) fn remember(&self, recipient_infos: &[u8], key: &[u8]) {
        let fingerprint = fingerprint(recipient_infos);
        let mut keys = self.0.lock().expect("the content key cache");
        if keys
            .by_recipients
            .insert(fingerprint, key.to_vec())
            .is_none()
        {
            keys.order.push_back(fingerprint);
        }
        while keys.order.len() > CAPACITY {
            if let Some(oldest) = keys.order.pop_front() {
                keys.by_recipients.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_their_recipients_and_the_oldest_go_first() {
        let cache = ContentKeyCache::default();
        assert_eq!(cache.get(b"a"), None);
        cache.remember(b"a", &[1; 32]);
        assert_eq!(cache.get(b"a"), Some(vec![1; 32]));
        for n in 0..CAPACITY as u32 {
            cache.remember(&n.to_be_bytes(), &[2; 32]);
        }
        assert_eq!(cache.get(b"a"), None, "the oldest key was evicted");
        assert_eq!(cache.get(&0u32.to_be_bytes()), Some(vec![2; 32]));
    }
}
