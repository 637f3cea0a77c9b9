//! The `crypto` imports: CMS, ASiC-E and JWS with the organisation's business certificate.
//!
//! The key stays in the host; a plugin passes blobs by handle and gets blobs or a JWS back. A
//! host without a certificate answers `unsupported`, naming what is missing. Signing refuses an
//! expired (or not yet valid) certificate as `key-unavailable`, since receivers would reject the
//! result; decryption still works with it, for messages sent before it expired. A storage
//! failure fails the call (a trap), like any other host I/O failure, so the engine retries it;
//! everything the plugin can act on comes back as a WIT error.

use std::time::SystemTime;

use openssl::x509::X509;
use wasmtime::component::Resource;

use super::super::bindings::eformidling::transport::crypto;
use super::blocking;
use crate::blobs::Blob;
use crate::crypto::asic::{self, AsicEntry, AsicError};
use crate::crypto::cms::{self, CmsError, KeyTransport};
use crate::crypto::jws::{self, JwsError};
use crate::crypto::{BusinessCertificate, ExpiryStatus};
use crate::plugins::sandbox::CallState;

fn no_crypto(operation: &str) -> crypto::Error {
    crypto::Error::Unsupported(format!(
        "{operation} needs the organisation's business certificate, which this host has not been given"
    ))
}

impl CallState {
    fn certificate(&self, operation: &str) -> Result<BusinessCertificate, crypto::Error> {
        self.plugin
            .services
            .certificate
            .clone()
            .ok_or_else(|| no_crypto(operation))
    }

    fn signing_certificate(&self, operation: &str) -> Result<BusinessCertificate, crypto::Error> {
        let certificate = self.certificate(operation)?;
        match certificate.check_expiry(SystemTime::now()) {
            ExpiryStatus::Invalid(message) => Err(crypto::Error::KeyUnavailable(message)),
            ExpiryStatus::Valid | ExpiryStatus::ExpiresSoon(_) => Ok(certificate),
        }
    }

    fn blob_result<E>(
        &mut self,
        result: Result<Blob, E>,
        error: impl FnOnce(E) -> wasmtime::Result<crypto::Error>,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        match result {
            Ok(blob) => Ok(Ok(self.push_blob(blob)?)),
            Err(failure) => Ok(Err(error(failure)?)),
        }
    }
}

fn cms_error(error: CmsError) -> wasmtime::Result<crypto::Error> {
    match error {
        CmsError::Io(error) => Err(error.into()),
        other => Ok(crypto::Error::Invalid(other.to_string())),
    }
}

fn asic_error(error: AsicError) -> wasmtime::Result<crypto::Error> {
    match error {
        AsicError::Io(error) => Err(error.into()),
        AsicError::Signing(error) => Ok(crypto::Error::KeyUnavailable(error.to_string())),
        other => Ok(crypto::Error::Invalid(other.to_string())),
    }
}

impl crypto::Host for CallState {
    async fn cms_encrypt(
        &mut self,
        content: Resource<Blob>,
        recipient_certificate: String,
        key_transport: crypto::KeyTransport,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        let content = self.blob(&content)?;
        let Ok(recipient) = X509::from_pem(recipient_certificate.as_bytes()) else {
            return Ok(Err(crypto::Error::Invalid(
                "the recipient certificate is not a PEM certificate".into(),
            )));
        };
        let transport = match key_transport {
            crypto::KeyTransport::RsaOaepSha256 => KeyTransport::RsaOaepSha256,
            crypto::KeyTransport::RsaPkcs1v15 => KeyTransport::RsaPkcs1v15,
        };
        let store = self.plugin.services.blobs.clone();
        let result =
            blocking(move || cms::encrypt_blob(&store, &content, &recipient, transport)).await?;
        self.blob_result(result, cms_error)
    }

    async fn cms_decrypt(
        &mut self,
        enveloped: Resource<Blob>,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        let enveloped = self.blob(&enveloped)?;
        let certificate = match self.certificate("CMS decryption") {
            Ok(certificate) => certificate,
            Err(error) => return Ok(Err(error)),
        };
        let store = self.plugin.services.blobs.clone();
        let result = blocking(move || cms::decrypt_blob(&store, &enveloped, &certificate)).await?;
        self.blob_result(result, cms_error)
    }

    async fn build_asic(
        &mut self,
        entries: Vec<crypto::AsicEntry>,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        let entries = entries
            .into_iter()
            .map(|entry| {
                Ok(AsicEntry {
                    name: entry.name,
                    mime_type: entry.mime_type,
                    content: self.blob(&entry.content)?,
                })
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let certificate = match self.signing_certificate("ASiC-E signing") {
            Ok(certificate) => certificate,
            Err(error) => return Ok(Err(error)),
        };
        let store = self.plugin.services.blobs.clone();
        let result = blocking(move || asic::build(&store, &certificate, entries)).await?;
        self.blob_result(result, asic_error)
    }

    async fn sign_jws(
        &mut self,
        payload: Vec<u8>,
        header: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<String, crypto::Error>> {
        let certificate = match self.signing_certificate("JWS signing") {
            Ok(certificate) => certificate,
            Err(error) => return Ok(Err(error)),
        };
        Ok(blocking(move || jws::sign(&certificate, &payload, &header))
            .await?
            .map_err(|error| match error {
                JwsError::Header(reason) => crypto::Error::Invalid(reason),
                JwsError::Signing(error) => crypto::Error::KeyUnavailable(error.to_string()),
            }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::blobs::{BlobStore, FileBlobStore};
    use crate::crypto::testpki::TestPki;
    use crate::plugins::allow_list::AllowList;
    use crate::plugins::egress::{Egress, EgressPolicy};
    use crate::plugins::sandbox::{GuestOutput, HostServices, PluginContext};
    use crate::secrets::Secrets;
    use crate::tokens::NoTokenService;

    fn call_state(
        store: &Arc<dyn BlobStore>,
        certificate: Option<BusinessCertificate>,
    ) -> CallState {
        let services = Arc::new(HostServices {
            egress: Egress::new(Arc::new(Secrets::new()), Arc::new(NoTokenService)).unwrap(),
            blobs: store.clone(),
            certificate,
        });
        let plugin = Arc::new(PluginContext {
            name: "test".into(),
            settings: BTreeMap::new(),
            policy: EgressPolicy {
                plugin: "test".into(),
                allowed: AllowList::parse(&[]).unwrap(),
                secrets: BTreeSet::new(),
                scopes: BTreeSet::new(),
                request_timeout: Duration::from_secs(1),
                download_limit: 0,
            },
            services,
        });
        CallState::new(plugin, 1 << 20, GuestOutput::default())
    }

    fn bytes(blob: &Blob) -> Vec<u8> {
        let mut bytes = Vec::new();
        blob.open().unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[tokio::test]
    async fn the_imports_reach_cms_asic_and_jws() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), 365);
        let store: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path().join("b")).unwrap());
        let mut state = call_state(&store, Some(pki.business_certificate()));
        let plain = state
            .push_blob(Blob::from_bytes(&store, b"document").unwrap())
            .unwrap();
        let pem = String::from_utf8(pki.leaf.to_pem().unwrap()).unwrap();

        let transport = crypto::KeyTransport::RsaOaepSha256;
        let own = Resource::new_borrow(plain.rep());
        let enveloped = crypto::Host::cms_encrypt(&mut state, own, pem, transport)
            .await
            .unwrap()
            .unwrap();
        let enveloped_blob = state.blob(&enveloped).unwrap();
        let opened = cms::decrypt_blob(&store, &enveloped_blob, &pki.business_certificate());
        assert_eq!(bytes(&opened.unwrap()), b"document");
        let borrowed = Resource::new_borrow(enveloped.rep());
        let decrypted = crypto::Host::cms_decrypt(&mut state, borrowed)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes(&state.blob(&decrypted).unwrap()), b"document");

        let entry = crypto::AsicEntry {
            name: "a.txt".into(),
            mime_type: "text/plain".into(),
            content: Resource::new_borrow(plain.rep()),
        };
        let container = crypto::Host::build_asic(&mut state, vec![entry])
            .await
            .unwrap()
            .unwrap();
        let verified = asic::verify(&state.blob(&container).unwrap(), None).unwrap();
        assert_eq!(verified.entries[0].name, "a.txt");

        let header = vec![("typ".to_owned(), "\"JWT\"".to_owned())];
        let jws = crypto::Host::sign_jws(&mut state, b"{}".to_vec(), header)
            .await
            .unwrap();
        assert_eq!(jws.unwrap().split('.').count(), 3);
        let bad = vec![("alg".to_owned(), "\"none\"".to_owned())];
        let refused = crypto::Host::sign_jws(&mut state, b"{}".to_vec(), bad)
            .await
            .unwrap();
        assert!(matches!(refused, Err(crypto::Error::Invalid(_))));
        let not_pem = Resource::new_borrow(plain.rep());
        let refused = crypto::Host::cms_encrypt(&mut state, not_pem, "x".into(), transport)
            .await
            .unwrap();
        assert!(matches!(refused, Err(crypto::Error::Invalid(reason)) if reason.contains("PEM")));
    }

    #[tokio::test]
    async fn without_a_certificate_they_answer_unsupported_and_expired_cannot_sign() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path().join("b")).unwrap());
        let mut state = call_state(&store, None);
        let blob = state
            .push_blob(Blob::from_bytes(&store, b"x").unwrap())
            .unwrap();
        let refused = crypto::Host::cms_decrypt(&mut state, Resource::new_borrow(blob.rep()))
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(crypto::Error::Unsupported(reason)) if reason.contains("business certificate"))
        );
        let refused = crypto::Host::sign_jws(&mut state, vec![], vec![])
            .await
            .unwrap();
        assert!(matches!(refused, Err(crypto::Error::Unsupported(_))));

        // Valid from yesterday for zero days: expired.
        let expired = TestPki::new(dir.path(), 0).business_certificate();
        let mut state = call_state(&store, Some(expired));
        let refused = crypto::Host::sign_jws(&mut state, vec![], vec![])
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(crypto::Error::KeyUnavailable(reason)) if reason.contains("expired"))
        );
    }
}
