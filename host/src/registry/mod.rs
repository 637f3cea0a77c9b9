//! The ServiceRegistry (adressetjeneste) client: who a receiver is, which channels reach it for a
//! process, the certificate an organisation registered, and DPE's Service Bus key.
//!
//! Every answer is a JWS checked against the registry's own keys ([`jws`]) before any of it is
//! used, since an altered answer would redirect documents and the key they are encrypted to.
//! Requests carry a Maskinporten token for the scopes of the enabled channels. Answers are kept
//! five minutes, as the Java integration point keeps them, keyed by what decides them: a lookup's
//! conversation id is only a correlation id for the registry's logs, so it is sent but is not
//! part of the key. The SAS key is kept a day. Only answers are kept; a receiver that was not
//! found, or an error, is asked about again the next time.

mod jws;
mod model;
mod select;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::time::Instant;

pub use model::{
    EntityType, IdentifierResource, InfoRecord, Patient, PostAddress, Postadresse, Service,
    ServiceRecord,
};
pub use select::{DEFAULT_ARKIVMELDING_PROCESS, for_document_type, without_process};

use crate::expiring::{CacheCounters, ExpiringCache};
use crate::http_text::{error_chain, excerpt};
use crate::tokens::TokenSource;

const SAS_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How the integration point uses the registry.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// The registry, e.g. `https://test.eformidling.no/adressetjeneste`
    /// (`difi.move.serviceregistryEndpoint`).
    pub url: String,
    /// Its JWK set (`difi.move.sign.jwkUrl`), by default `{url}/jwk`.
    pub jwk_url: String,
    /// The scopes of the Maskinporten token sent as bearer, see [`scopes_for_channels`]. Empty
    /// sends no token, as `difi.move.oidc.enable=false` does.
    pub scopes: Vec<String>,
    /// Sends `X-Enable-Beta-Features: true`, which DPH records need
    /// (`difi.move.feature.enableBetaFeatures`).
    pub beta_features: bool,
    /// Whether the registry may look citizens up for print; `false` sends `print=false`
    /// (`difi.move.feature.enableDsfPrintLookup`).
    pub print_lookup: bool,
    /// The process tried after DPI when a receiver is looked up without one
    /// (`difi.move.arkivmelding.default-process`).
    pub default_process: String,
    /// How long lookups and certificates are kept.
    pub lookup_lifetime: Duration,
    /// The longest one request may take.
    pub request_timeout: Duration,
}

impl RegistryConfig {
    /// The registry at `url` with the Java integration point's defaults: keys from `{url}/jwk`,
    /// no bearer scopes, no beta features, print lookups allowed, the default arkivmelding
    /// process, answers kept five minutes, a 30 s request timeout.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            jwk_url: format!("{}/jwk", url.trim_end_matches('/')),
            url,
            scopes: Vec::new(),
            beta_features: false,
            print_lookup: true,
            default_process: DEFAULT_ARKIVMELDING_PROCESS.into(),
            lookup_lifetime: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The Maskinporten scopes the registry's bearer token needs for the enabled `channels` (`DPO`,
/// `DPE`, `DPV`, `DPF`, `DPH`, `DPI`): the registry also forwards the token to the contact
/// register for citizens, which is why DPI adds the contact register's scopes.
pub fn scopes_for_channels<'a>(channels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    const DPI: [&str; 8] = [
        "eformidling:dpi",
        "digitalpostinnbygger:send",
        "global/kontaktinformasjon.read",
        "global/sikkerdigitalpost.read",
        "global/varslingsstatus.read",
        "global/sertifikat.read",
        "global/navn.read",
        "global/postadresse.read",
    ];
    let mut scopes = Vec::new();
    for channel in channels {
        match channel.to_ascii_uppercase().as_str() {
            "DPI" => scopes.extend(DPI.map(str::to_owned)),
            other => scopes.push(format!("eformidling:{}", other.to_ascii_lowercase())),
        }
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

/// What a lookup may add beyond the identifier and the process.
#[derive(Clone, Debug, Default)]
pub struct LookupOptions {
    /// The security level the message requires (the business message's `sikkerhetsnivaa`).
    pub security_level: Option<i32>,
    /// The conversation, for the registry's logs; it does not change the answer.
    pub conversation_id: Option<String>,
}

/// Why the registry gave no usable answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry knows no such receiver, or the receiver has no such process (404).
    #[error("{resource} was not found in the service registry")]
    NotFound {
        /// What was asked for, e.g. `identifier/910075918`.
        resource: String,
    },
    /// The registry refused the request.
    #[error(
        "the service registry refused {resource}: HTTP {status}{}: {detail}",
        .error_code.as_ref().map(|code| format!(" {code}")).unwrap_or_default()
    )]
    Refused {
        /// What was asked for.
        resource: String,
        /// The HTTP status.
        status: u16,
        /// The registry's `error_code`, if it gave one.
        error_code: Option<String>,
        /// The registry's `error_description`, or the answer's text.
        detail: String,
    },
    /// The answer's signature did not check out; nothing of it was used.
    #[error("the service registry's answer to {resource} was refused: bad signature: {reason}")]
    BadSignature {
        /// What was asked for.
        resource: String,
        /// What was wrong.
        reason: String,
    },
    /// The registry (or its key set) could not be reached.
    #[error("the service registry could not be reached for {resource}: {reason}")]
    Unavailable {
        /// What was asked for.
        resource: String,
        /// Why.
        reason: String,
    },
    /// A signed answer whose content is not what was asked for.
    #[error("the service registry's answer to {resource} is unreadable: {reason}")]
    Malformed {
        /// What was asked for.
        resource: String,
        /// What was wrong.
        reason: String,
    },
    /// No token for the registry.
    #[error("no Maskinporten token for the service registry: {0}")]
    Token(String),
    /// The receiver has records for the process, but none takes the document type.
    #[error(
        "{identifier} accepts no document type {document_type} in process {process} \
         according to the service registry"
    )]
    DocumentTypeNotAccepted {
        /// The receiver.
        identifier: String,
        /// The process.
        process: String,
        /// The document type.
        document_type: String,
    },
    /// The receiver has no record a message without a process could use.
    #[error("{identifier} has no DPI, {default_process} or DPE record in the service registry")]
    NoDefaultRecord {
        /// The receiver.
        identifier: String,
        /// The default process that was tried.
        default_process: String,
    },
}

/// What an answer is kept by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lookup {
    Identifier {
        identifier: String,
        process: Option<String>,
        security_level: Option<i32>,
    },
    Info(String),
    Certificate(String),
    SasKey,
}

/// The registry client; share it, as its answers are kept per client.
pub struct ServiceRegistry {
    client: Arc<Client>,
    resources: ExpiringCache<Lookup, Arc<IdentifierResource>, RegistryError>,
    texts: ExpiringCache<Lookup, String, RegistryError>,
}

struct Client {
    config: RegistryConfig,
    base: Url,
    http: reqwest::Client,
    tokens: Arc<dyn TokenSource>,
    keys: jws::RegistryKeys,
}

/// A request: path segments after the base URL, and query parameters.
struct Request {
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    error_description: Option<String>,
}

impl ServiceRegistry {
    /// A client for `config`, with bearer tokens from `tokens`.
    pub fn new(config: RegistryConfig, tokens: Arc<dyn TokenSource>) -> anyhow::Result<Self> {
        let base = Url::parse(&config.url)
            .map_err(|error| anyhow::anyhow!("registry URL {:?}: {error}", config.url))?;
        anyhow::ensure!(
            !base.cannot_be_a_base(),
            "registry URL {:?} cannot be a base",
            config.url
        );
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("integrasjonspunkt/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let keys = jws::RegistryKeys::new(config.jwk_url.clone(), http.clone());
        Ok(Self {
            client: Arc::new(Client {
                config,
                base,
                http,
                tokens,
                keys,
            }),
            resources: ExpiringCache::new(),
            texts: ExpiringCache::new(),
        })
    }

    /// How its lookups were answered, per cache: receivers' records (`registry_lookup`), the
    /// texts (certificates, info, the SAS key: `registry_text`) and the signing keys
    /// (`registry_keys`).
    pub fn cache_counters(&self) -> [(&'static str, Arc<CacheCounters>); 3] {
        [
            ("registry_lookup", self.resources.counters()),
            ("registry_text", self.texts.counters()),
            ("registry_keys", self.client.keys.cache_counters()),
        ]
    }

    /// Everything the registry says about `identifier`, for `process` if given
    /// (`identifier/{id}[/process/{process}]`).
    pub async fn identifier(
        &self,
        identifier: &str,
        process: Option<&str>,
        options: &LookupOptions,
    ) -> Result<Arc<IdentifierResource>, RegistryError> {
        let mut segments = vec!["identifier".to_owned(), identifier.to_owned()];
        if let Some(process) = process {
            segments.extend(["process".to_owned(), process.to_owned()]);
        }
        let mut query = Vec::new();
        if let Some(level) = options.security_level {
            query.push(("securityLevel", level.to_string()));
        }
        if let Some(conversation) = &options.conversation_id {
            query.push(("conversationId", conversation.clone()));
        }
        if !self.client.config.print_lookup {
            query.push(("print", "false".to_owned()));
        }
        let key = Lookup::Identifier {
            identifier: identifier.to_owned(),
            process: process.map(str::to_owned),
            security_level: options.security_level,
        };
        self.resource(key, Request { segments, query }).await
    }

    /// The record a message of `document_type` in `process` is sent by.
    pub async fn service_record(
        &self,
        identifier: &str,
        process: &str,
        document_type: &str,
        options: &LookupOptions,
    ) -> Result<ServiceRecord, RegistryError> {
        let resource = self.identifier(identifier, Some(process), options).await?;
        for_document_type(&resource.service_records, document_type)
            .cloned()
            .ok_or_else(|| RegistryError::DocumentTypeNotAccepted {
                identifier: identifier.to_owned(),
                process: process.to_owned(),
                document_type: document_type.to_owned(),
            })
    }

    /// The record used for `identifier` when no process is known: DPI, then the default
    /// process, then DPE.
    pub async fn default_service_record(
        &self,
        identifier: &str,
        options: &LookupOptions,
    ) -> Result<ServiceRecord, RegistryError> {
        let resource = self.identifier(identifier, None, options).await?;
        let default_process = &self.client.config.default_process;
        without_process(&resource.service_records, default_process)
            .cloned()
            .ok_or_else(|| RegistryError::NoDefaultRecord {
                identifier: identifier.to_owned(),
                default_process: default_process.clone(),
            })
    }

    /// Who `identifier` is (`info/{id}`), for the names and addresses DPF and DPV send.
    pub async fn info(&self, identifier: &str) -> Result<InfoRecord, RegistryError> {
        let request = Request {
            segments: vec!["info".to_owned(), identifier.to_owned()],
            query: Vec::new(),
        };
        let resource = self
            .resource(Lookup::Info(identifier.to_owned()), request)
            .await?;
        resource
            .info_record
            .clone()
            .ok_or_else(|| RegistryError::Malformed {
                resource: format!("info/{identifier}"),
                reason: "no infoRecord".into(),
            })
    }

    /// The certificate `identifier` registered in Virksert, PEM (`virksert/{id}`); the host
    /// compares its own against it at start when DPO or DPE is enabled.
    pub async fn certificate(&self, identifier: &str) -> Result<String, RegistryError> {
        let request = Request {
            segments: vec!["virksert".to_owned(), identifier.to_owned()],
            query: Vec::new(),
        };
        let lifetime = self.client.config.lookup_lifetime;
        self.text(
            Lookup::Certificate(identifier.to_owned()),
            request,
            lifetime,
        )
        .await
    }

    /// The Service Bus shared access key for DPE (`sastoken`).
    pub async fn sas_key(&self) -> Result<String, RegistryError> {
        let request = Request {
            segments: vec!["sastoken".to_owned()],
            query: Vec::new(),
        };
        self.text(Lookup::SasKey, request, SAS_KEY_LIFETIME).await
    }

    async fn resource(
        &self,
        key: Lookup,
        request: Request,
    ) -> Result<Arc<IdentifierResource>, RegistryError> {
        let client = self.client.clone();
        self.resources
            .get_or_fetch(&key, move || {
                Box::pin(async move {
                    let (resource, payload) = client.get(&request).await?;
                    let parsed = serde_json::from_str(&payload).map_err(|error| {
                        RegistryError::Malformed {
                            resource,
                            reason: error.to_string(),
                        }
                    })?;
                    let until = Instant::now() + client.config.lookup_lifetime;
                    Ok((Arc::new(parsed), until))
                })
            })
            .await
    }

    async fn text(
        &self,
        key: Lookup,
        request: Request,
        lifetime: Duration,
    ) -> Result<String, RegistryError> {
        let client = self.client.clone();
        self.texts
            .get_or_fetch(&key, move || {
                Box::pin(async move {
                    let (_, payload) = client.get(&request).await?;
                    Ok((payload.trim().to_owned(), Instant::now() + lifetime))
                })
            })
            .await
    }
}

impl Client {
    /// The verified payload of the answer to `request`, and the request's name for messages.
    async fn get(&self, request: &Request) -> Result<(String, String), RegistryError> {
        let resource = request.segments.join("/");
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked to be a base")
            .pop_if_empty()
            .extend(&request.segments);
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        let mut builder = self.http.get(url).header(
            reqwest::header::ACCEPT,
            "application/jose, application/json",
        );
        if self.config.beta_features {
            builder = builder.header("X-Enable-Beta-Features", "true");
        }
        if !self.config.scopes.is_empty() {
            let token = self
                .tokens
                .maskinporten(&self.config.scopes)
                .await
                .map_err(RegistryError::Token)?;
            builder = builder.bearer_auth(token);
        }
        let unavailable = |error: reqwest::Error| RegistryError::Unavailable {
            resource: resource.clone(),
            reason: error_chain(&error),
        };
        let response = builder.send().await.map_err(unavailable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unavailable)?;
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound { resource });
        }
        if !status.is_success() {
            let (error_code, detail) = match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(ErrorBody {
                    error_code,
                    error_description: Some(description),
                }) => (error_code, description),
                Ok(ErrorBody { error_code, .. }) => (error_code, excerpt(&body)),
                Err(_) => (None, excerpt(&body)),
            };
            return Err(RegistryError::Refused {
                resource,
                status: status.as_u16(),
                error_code,
                detail,
            });
        }
        let compact = String::from_utf8_lossy(&body);
        let payload = self.keys.verified_payload(&resource, &compact).await?;
        Ok((resource, payload))
    }
}
