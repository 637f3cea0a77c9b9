//! The `crypto` imports: CMS, ASiC-E (CAdES or XAdES) and JWS with the organisation's business
//! certificate, and SHA-256 of a blob.
//!
//! The key stays in the host; a plugin passes blobs by handle and gets blobs or a JWS back. A
//! host without a certificate answers `unsupported`, naming what is missing. Signing refuses an
//! expired (or not yet valid) certificate as `key-unavailable`, since receivers would reject the
//! result; decryption still works with it, for messages sent before it expired. A storage
//! failure fails the call (a trap), like any other host I/O failure, so the engine retries it;
//! everything the plugin can act on comes back as a WIT error.

use std::io::Read as _;
use std::time::SystemTime;

use openssl::hash::{Hasher, MessageDigest};

use openssl::x509::X509;
use wasmtime::component::Resource;

use super::super::bindings::eformidling::transport::crypto;
use super::blocking;
use crate::blobs::Blob;
use crate::crypto::asic::{self, AsicEntry, AsicError, SignatureForm};
use crate::crypto::cms::{self, CmsError, KeyTransport};
use crate::crypto::jws::{self, JwsError};
use crate::crypto::{BusinessCertificate, ExpiryStatus};
use crate::plugins::egress::EgressError;
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

    /// A container of `entries` signed in `form` with the business certificate.
    async fn asic(
        &mut self,
        entries: Vec<crypto::AsicEntry>,
        form: SignatureForm,
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
        let result =
            blocking(move || asic::build_signed(&store, &certificate, entries, form)).await?;
        self.blob_result(result, asic_error)
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
        self.asic(entries, SignatureForm::Cades).await
    }

    async fn build_asic_xades(
        &mut self,
        entries: Vec<crypto::AsicEntry>,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        self.asic(entries, SignatureForm::Xades).await
    }

    async fn sign_jws_with_token(
        &mut self,
        payload: Vec<u8>,
        header: Vec<(String, String)>,
        token_pointer: String,
        scopes: Vec<String>,
    ) -> wasmtime::Result<Result<Resource<Blob>, crypto::Error>> {
        let certificate = match self.signing_certificate("JWS signing") {
            Ok(certificate) => certificate,
            Err(error) => return Ok(Err(error)),
        };
        let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(&payload) else {
            return Ok(Err(crypto::Error::Invalid(
                "the payload is not JSON".into(),
            )));
        };
        let Some(slot) = document.pointer_mut(&token_pointer) else {
            return Ok(Err(crypto::Error::Invalid(format!(
                "the payload has no member at {token_pointer:?} for the token"
            ))));
        };
        let services = self.plugin.services.clone();
        let token = match services
            .egress
            .maskinporten_token(&self.plugin.policy, &scopes)
            .await
        {
            Ok(token) => token,
            Err(EgressError::Credentials(why)) => {
                return Ok(Err(crypto::Error::KeyUnavailable(format!(
                    "no Maskinporten token: {why}"
                ))));
            }
            Err(other) => return Ok(Err(crypto::Error::Invalid(other.to_string()))),
        };
        *slot = serde_json::Value::String(token);
        let payload = serde_json::to_vec(&document)?;
        let signed = blocking(move || jws::sign(&certificate, &payload, &header)).await?;
        let jws = match signed {
            Ok(jws) => jws,
            Err(JwsError::Header(reason)) => return Ok(Err(crypto::Error::Invalid(reason))),
            Err(JwsError::Signing(error)) => {
                return Ok(Err(crypto::Error::KeyUnavailable(error.to_string())));
            }
        };
        let store = self.plugin.services.blobs.clone();
        let blob = blocking(move || Blob::from_bytes(&store, jws.as_bytes())).await??;
        Ok(Ok(self.push_blob(blob)?))
    }

    async fn sha256(&mut self, content: Resource<Blob>) -> wasmtime::Result<Vec<u8>> {
        let content = self.blob(&content)?;
        blocking(move || -> std::io::Result<Vec<u8>> {
            let mut hasher = Hasher::new(MessageDigest::sha256()).map_err(std::io::Error::other)?;
            let mut reader = content.open()?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = reader.read(&mut buffer)?;
                if read == 0 {
                    break;
                }
                hasher
                    .update(&buffer[..read])
                    .map_err(std::io::Error::other)?;
            }
            Ok(hasher.finish().map_err(std::io::Error::other)?.to_vec())
        })
        .await?
        .map_err(Into::into)
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
        call_state_with_tokens(store, certificate, Arc::new(NoTokenService), &[])
    }

    /// Tokens named after their scopes, for the token-carrying JWS.
    struct NamedTokens;

    impl crate::tokens::TokenSource for NamedTokens {
        fn maskinporten<'a>(
            &'a self,
            scopes: &'a [String],
        ) -> futures::future::BoxFuture<'a, Result<String, String>> {
            Box::pin(async move { Ok(format!("token-for-{}", scopes.join(" "))) })
        }
        fn altinn<'a>(
            &'a self,
            _: &'a [String],
        ) -> futures::future::BoxFuture<'a, Result<String, String>> {
            Box::pin(async { Err("no exchange".to_owned()) })
        }
    }

    fn call_state_with_tokens(
        store: &Arc<dyn BlobStore>,
        certificate: Option<BusinessCertificate>,
        tokens: Arc<dyn crate::tokens::TokenSource>,
        scopes: &[&str],
    ) -> CallState {
        let services = Arc::new(HostServices {
            egress: Egress::new(Arc::new(Secrets::new()), tokens).unwrap(),
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
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
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
    async fn xades_containers_and_digests_are_made_by_handle() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), 365);
        let store: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path().join("b")).unwrap());
        let mut state = call_state(&store, Some(pki.business_certificate()));
        let plain = state
            .push_blob(Blob::from_bytes(&store, b"document").unwrap())
            .unwrap();

        let digest = crypto::Host::sha256(&mut state, Resource::new_borrow(plain.rep()))
            .await
            .unwrap();
        assert_eq!(
            digest,
            openssl::hash::hash(MessageDigest::sha256(), b"document")
                .unwrap()
                .to_vec()
        );

        let entry = crypto::AsicEntry {
            name: "manifest.xml".into(),
            mime_type: "application/xml".into(),
            content: Resource::new_borrow(plain.rep()),
        };
        let container = crypto::Host::build_asic_xades(&mut state, vec![entry])
            .await
            .unwrap()
            .unwrap();
        let bytes = bytes(&state.blob(&container).unwrap());
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip
            .file_names()
            .map(|name| name.unwrap().into_owned())
            .collect();
        assert_eq!(names[0], "mimetype");
        assert!(names.contains(&"manifest.xml".to_owned()), "{names:?}");
        assert!(
            names.contains(&"META-INF/signatures.xml".to_owned()),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.ends_with(".p7s")), "{names:?}");
        let mut signatures = String::new();
        zip.by_name("META-INF/signatures.xml")
            .unwrap()
            .read_to_string(&mut signatures)
            .unwrap();
        assert!(signatures.contains("URI=\"manifest.xml\""), "{signatures}");

        let mut without = call_state(&store, None);
        let own = without
            .push_blob(Blob::from_bytes(&store, b"document").unwrap())
            .unwrap();
        let entry = crypto::AsicEntry {
            name: "a.txt".into(),
            mime_type: "text/plain".into(),
            content: Resource::new_borrow(own.rep()),
        };
        let refused = crypto::Host::build_asic_xades(&mut without, vec![entry])
            .await
            .unwrap();
        assert!(matches!(refused, Err(crypto::Error::Unsupported(_))));
    }

    #[tokio::test]
    async fn a_token_carrying_jws_gets_a_granted_token_the_plugin_never_sees() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), 365);
        let store: Arc<dyn BlobStore> =
            Arc::new(FileBlobStore::open(dir.path().join("b")).unwrap());
        let scope = "digitalpostinnbygger:send".to_owned();
        let mut state = call_state_with_tokens(
            &store,
            Some(pki.business_certificate()),
            Arc::new(NamedTokens),
            &[&scope],
        );
        let payload = br#"{"digital":{"maskinportentoken":""}}"#.to_vec();
        let signed = crypto::Host::sign_jws_with_token(
            &mut state,
            payload.clone(),
            Vec::new(),
            "/digital/maskinportentoken".into(),
            vec![scope.clone()],
        )
        .await
        .unwrap()
        .unwrap();
        let jws = String::from_utf8(bytes(&state.blob(&signed).unwrap())).unwrap();
        let claims = jws.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["digital"]["maskinportentoken"],
            "token-for-digitalpostinnbygger:send"
        );

        let missing = crypto::Host::sign_jws_with_token(
            &mut state,
            payload.clone(),
            Vec::new(),
            "/print/maskinportentoken".into(),
            vec![scope.clone()],
        )
        .await
        .unwrap();
        assert!(matches!(missing, Err(crypto::Error::Invalid(_))));
        let ungranted = crypto::Host::sign_jws_with_token(
            &mut state,
            payload,
            Vec::new(),
            "/digital/maskinportentoken".into(),
            vec!["altinn:broker.write".into()],
        )
        .await
        .unwrap();
        assert!(
            matches!(&ungranted, Err(crypto::Error::Invalid(why)) if why.contains("not granted")),
            "{ungranted:?}"
        );
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
