//! The egress chokepoint: every HTTP request of every plugin passes [`Egress::send`].
//!
//! Keeping exactly one path out of the sandbox is what makes the policy auditable (Spin once lost
//! its allow-list to a second path). In order, a request is: parsed and refused unless its scheme,
//! host and port are on the plugin's allow-list; refused if it sets `authorization` itself;
//! given the credentials it names, resolved here from secrets and tokens the plugin never sees, and
//! only those granted to it; rid of its secret placeholders the same way; sent with the plugin's
//! timeouts, its blob, multipart and composed bodies streamed from the blob store (blobs
//! base64-encoded on the way where the plugin asks); answered with a capped in-memory body or
//! a body streamed into a new blob; and counted and traced. Redirects are not followed, since a
//! redirect would be a second, unchecked destination: the plugin sees the 3xx and may ask again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use sha2::Sha256;
use tracing::Instrument as _;

use super::allow_list::AllowList;
use super::{base64_stream, placeholders};
use crate::blobs::{self, Blob, BlobStore};
use crate::http_text::error_chain;
use crate::secrets::{Secret, Secrets};
use crate::tokens::TokenSource;

/// The most a plugin may read into memory from one response.
pub const MAX_BUFFERED_BODY: usize = 16 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SAS_VALIDITY: Duration = Duration::from_secs(3600);

/// A fresh random boundary for a multipart body, so that no content can foresee it.
fn multipart_boundary() -> String {
    let mut random = [0u8; 16];
    if crate::crypto::random(&mut random).is_err() {
        random = *uuid::Uuid::new_v4().as_bytes();
    }
    format!("ip-{}", hex::encode(random))
}

/// What one plugin may do on the network.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    /// The plugin's name, for errors, metrics and traces.
    pub plugin: String,
    /// Where it may connect.
    pub allowed: AllowList,
    /// The secrets it may name.
    pub secrets: BTreeSet<String>,
    /// The Maskinporten scopes it may ask for.
    pub scopes: BTreeSet<String>,
    /// The longest one request may take.
    pub request_timeout: Duration,
    /// The largest body it may stream into a blob.
    pub download_limit: u64,
}

/// Credentials a request names.
#[derive(Clone, Debug, PartialEq)]
pub enum Credentials {
    /// None.
    None,
    /// A Maskinporten token with these scopes.
    Maskinporten(Vec<String>),
    /// A Maskinporten token exchanged for an Altinn token.
    AltinnExchange(Vec<String>),
    /// HTTP Basic from the named secret.
    Basic(String),
    /// A Service Bus SAS from the named secret.
    ServiceBusSas(String),
}

/// Content carried inline or by handle.
#[derive(Clone, Debug)]
pub enum Content {
    /// Inline bytes; secret placeholders are filled.
    Bytes(Vec<u8>),
    /// A blob, streamed as is.
    Blob(Blob),
    /// Segments joined in order.
    Composed(Vec<Segment>),
}

/// One piece of composed content.
#[derive(Clone, Debug)]
pub enum Segment {
    /// Inline bytes; secret placeholders are filled.
    Bytes(Vec<u8>),
    /// A blob, streamed as is.
    Blob(Blob),
    /// A blob, base64-encoded this many times as it streams.
    Base64(Blob, u8),
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::Blob(blob) => blob.size(),
            Segment::Base64(blob, rounds) => base64_stream::encoded_len(blob.size(), *rounds),
        }
    }

    fn stream(self) -> BoxStream<'static, std::io::Result<Bytes>> {
        match self {
            Segment::Bytes(bytes) => {
                futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed()
            }
            Segment::Blob(blob) => blobs::read_stream(blob).boxed(),
            Segment::Base64(blob, rounds) => {
                base64_stream::encode(blobs::read_stream(blob).boxed(), rounds)
            }
        }
    }
}

/// One part of a multipart body.
#[derive(Clone, Debug)]
pub struct Part {
    /// The part's headers.
    pub headers: Vec<(String, String)>,
    /// Its content.
    pub content: Content,
}

/// A request body.
#[derive(Clone, Debug)]
pub enum Body {
    /// None.
    Empty,
    /// One piece of content.
    Single(Content),
    /// A multipart body.
    Multipart {
        /// `related`, `form-data`, `mixed`, ...
        subtype: String,
        /// Further content-type parameters.
        parameters: Vec<(String, String)>,
        /// The parts.
        parts: Vec<Part>,
    },
}

/// A plugin's request, as the host holds it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: http::Method,
    /// The absolute URL.
    pub url: String,
    /// The plugin's headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// The credentials to attach.
    pub credentials: Credentials,
    /// The plugin's own timeout, capped by the policy's.
    pub timeout: Option<Duration>,
}

/// Where the response body goes.
pub enum ResponseTarget {
    /// Into memory, refusing more than this many bytes.
    Memory(usize),
    /// Into a new blob of this store.
    Blob(Arc<dyn BlobStore>),
}

/// A response body.
#[derive(Debug)]
pub enum ResponseBody {
    /// Read into memory.
    Bytes(Vec<u8>),
    /// Streamed into a blob.
    Blob(Blob),
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ResponseBody,
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EgressError {
    /// The policy refused it.
    #[error("denied: {0}")]
    Denied(String),
    /// It is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Its credentials could not be obtained.
    #[error("credentials unavailable: {0}")]
    Credentials(String),
    /// It timed out.
    #[error("timed out")]
    Timeout,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The response body exceeded the cap, in bytes.
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
}

/// Headers the host owns; a plugin setting them is refused.
const HOST_HEADERS: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "proxy-authorization",
    "te",
];

/// A body ready to send: the stream, its length and the content type the host sets.
type PreparedBody = (Option<reqwest::Body>, Option<u64>, Option<String>);

/// The chokepoint, shared by every plugin call.
pub struct Egress {
    client: reqwest::Client,
    secrets: Arc<Secrets>,
    tokens: Arc<dyn TokenSource>,
    metrics: EgressMetrics,
}

impl Egress {
    /// A chokepoint resolving credentials from `secrets` and `tokens`.
    pub fn new(secrets: Arc<Secrets>, tokens: Arc<dyn TokenSource>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("integrasjonspunkt/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            secrets,
            tokens,
            metrics: EgressMetrics::default(),
        })
    }

    /// Counts of requests so far.
    pub fn metrics(&self) -> &EgressMetrics {
        &self.metrics
    }

    /// Checks, completes and sends one request of a plugin.
    pub async fn send(
        &self,
        policy: &EgressPolicy,
        request: Request,
        target: ResponseTarget,
    ) -> Result<Response, EgressError> {
        let started = Instant::now();
        let url = reqwest::Url::parse(&request.url)
            .map_err(|error| EgressError::Invalid(format!("URL {:?}: {error}", request.url)));
        let destination = url
            .as_ref()
            .map(|url| format!("{}://{}", url.scheme(), url.authority()))
            .unwrap_or_else(|_| "(invalid)".into());
        let span = tracing::info_span!(
            "egress",
            plugin = %policy.plugin,
            method = %request.method,
            destination = %destination,
            status = tracing::field::Empty,
        );
        let result = async {
            let url = url?;
            let prepared = self.prepare(policy, &url, request).await?;
            self.execute(policy, prepared, target).await
        }
        .instrument(span.clone())
        .await;
        let outcome = match &result {
            Ok(response) => {
                span.record("status", response.status);
                format!("{}xx", response.status / 100)
            }
            Err(EgressError::Denied(reason)) => {
                tracing::warn!(parent: &span, plugin = %policy.plugin, %reason, "egress denied");
                "denied".into()
            }
            Err(error) => {
                tracing::info!(parent: &span, %error, "egress failed");
                "error".into()
            }
        };
        self.metrics
            .record(&policy.plugin, &destination, &outcome, started.elapsed());
        result
    }

    async fn prepare(
        &self,
        policy: &EgressPolicy,
        url: &reqwest::Url,
        request: Request,
    ) -> Result<reqwest::RequestBuilder, EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Denied(format!(
                "scheme {:?} is not allowed",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::Denied(
                "credentials in the URL are not allowed; name credentials instead".into(),
            ));
        }
        if !policy.allowed.allows(url) {
            return Err(EgressError::Denied(format!(
                "{}://{}:{} is not on the allow-list of plugin {} ({})",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or_default(),
                policy.plugin,
                policy.allowed,
            )));
        }
        let mut headers = http::HeaderMap::new();
        for (name, value) in &request.headers {
            let name = header_name(name)?;
            if name == http::header::AUTHORIZATION {
                return Err(EgressError::Denied(
                    "a plugin may not set the authorization header; name the credentials instead"
                        .into(),
                ));
            }
            if HOST_HEADERS.contains(&name.as_str()) {
                return Err(EgressError::Invalid(format!(
                    "the {name} header is set by the host"
                )));
            }
            headers.append(name, header_value(value)?);
        }
        if let Some(value) = self
            .authorization(policy, url, &request.credentials)
            .await?
        {
            let mut value = header_value(&value)?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let (body, length, content_type) = self.body(policy, request.body)?;
        if let Some(content_type) = content_type {
            headers.insert(http::header::CONTENT_TYPE, header_value(&content_type)?);
        }
        if let Some(length) = length {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        let timeout = request.timeout.map_or(policy.request_timeout, |timeout| {
            timeout.min(policy.request_timeout)
        });
        let mut builder = self
            .client
            .request(request.method, url.clone())
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        Ok(builder)
    }

    /// A Maskinporten access token with `scopes` for a plugin that must carry one inside a
    /// signed document (DPI's forretningsmelding), checked against the plugin's granted scopes
    /// exactly as a request's credentials are.
    pub async fn maskinporten_token(
        &self,
        policy: &EgressPolicy,
        scopes: &[String],
    ) -> Result<String, EgressError> {
        let url =
            reqwest::Url::parse("urn:token").map_err(|e| EgressError::Invalid(e.to_string()))?;
        let credentials = Credentials::Maskinporten(scopes.to_vec());
        let authorization = self.authorization(policy, &url, &credentials).await?;
        Ok(authorization
            .and_then(|value| value.strip_prefix("Bearer ").map(str::to_owned))
            .unwrap_or_default())
    }

    async fn authorization(
        &self,
        policy: &EgressPolicy,
        url: &reqwest::Url,
        credentials: &Credentials,
    ) -> Result<Option<String>, EgressError> {
        let check_scopes =
            |scopes: &[String]| match scopes.iter().find(|scope| !policy.scopes.contains(*scope)) {
                Some(scope) => Err(EgressError::Denied(format!(
                    "scope {scope:?} is not granted to plugin {}",
                    policy.plugin
                ))),
                None if scopes.is_empty() => Err(EgressError::Invalid("no scopes named".into())),
                None => Ok(()),
            };
        Ok(match credentials {
            Credentials::None => None,
            Credentials::Maskinporten(scopes) => {
                check_scopes(scopes)?;
                let token = self
                    .tokens
                    .maskinporten(scopes)
                    .await
                    .map_err(EgressError::Credentials)?;
                Some(format!("Bearer {token}"))
            }
            Credentials::AltinnExchange(scopes) => {
                check_scopes(scopes)?;
                let token = self
                    .tokens
                    .altinn(scopes)
                    .await
                    .map_err(EgressError::Credentials)?;
                Some(format!("Bearer {token}"))
            }
            Credentials::Basic(name) => match self.granted(policy, name)? {
                Secret::UsernamePassword { username, password } => {
                    let pair = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"));
                    Some(format!("Basic {pair}"))
                }
                _ => {
                    return Err(EgressError::Invalid(format!(
                        "secret {name:?} is not a username and password"
                    )));
                }
            },
            Credentials::ServiceBusSas(name) => match self.granted(policy, name)? {
                Secret::SharedAccessKey { key_name, key } => {
                    Some(service_bus_sas(url, key_name, key))
                }
                _ => {
                    return Err(EgressError::Invalid(format!(
                        "secret {name:?} is not a shared access key"
                    )));
                }
            },
        })
    }

    fn granted(&self, policy: &EgressPolicy, name: &str) -> Result<&Secret, EgressError> {
        if !policy.secrets.contains(name) {
            return Err(EgressError::Denied(format!(
                "secret {name:?} is not granted to plugin {}",
                policy.plugin
            )));
        }
        self.secrets.get(name).ok_or_else(|| {
            EgressError::Credentials(format!("secret {name:?} is granted but not configured"))
        })
    }

    fn fill(&self, policy: &EgressPolicy, bytes: Vec<u8>) -> Result<Vec<u8>, EgressError> {
        placeholders::fill(bytes, |name, field| {
            let secret = self.granted(policy, name)?;
            secret.field(field).map(str::to_owned).ok_or_else(|| {
                EgressError::Invalid(match field {
                    Some(field) => format!("secret {name:?} has no field {field:?}"),
                    None => format!(
                        "secret {name:?} has fields {}; name one",
                        secret.fields().join(", ")
                    ),
                })
            })
        })
    }

    /// The streamed body, its length and the content type the host sets.
    fn body(&self, policy: &EgressPolicy, body: Body) -> Result<PreparedBody, EgressError> {
        let (segments, content_type) = match body {
            Body::Empty => return Ok((None, None, None)),
            Body::Single(content) => (self.segments(policy, content)?, None),
            Body::Multipart {
                subtype,
                parameters,
                parts,
            } => {
                let boundary = multipart_boundary();
                let mut content_type =
                    format!("multipart/{}; boundary=\"{boundary}\"", token(&subtype)?);
                for (name, value) in &parameters {
                    if value.contains(['"', '\\', '\r', '\n']) {
                        return Err(EgressError::Invalid(format!(
                            "multipart parameter {name:?} has a quote or line break"
                        )));
                    }
                    content_type.push_str(&format!("; {}=\"{value}\"", token(name)?));
                }
                let mut segments = Vec::with_capacity(parts.len() * 3 + 1);
                for part in parts {
                    let mut head = format!("--{boundary}\r\n");
                    for (name, value) in &part.headers {
                        let name = header_name(name)?;
                        header_value(value)?;
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    segments.push(Segment::Bytes(head.into_bytes()));
                    segments.extend(self.segments(policy, part.content)?);
                    segments.push(Segment::Bytes(b"\r\n".to_vec()));
                }
                segments.push(Segment::Bytes(format!("--{boundary}--\r\n").into_bytes()));
                (segments, Some(content_type))
            }
        };
        let length = segments.iter().map(Segment::len).sum();
        let stream: BoxStream<'static, std::io::Result<Bytes>> = futures::stream::iter(segments)
            .flat_map(Segment::stream)
            .boxed();
        Ok((
            Some(reqwest::Body::wrap_stream(stream)),
            Some(length),
            content_type,
        ))
    }

    /// The segments of one piece of content, with the placeholders of its inline bytes filled
    /// (never those of a blob) and its base64 rounds checked.
    fn segments(
        &self,
        policy: &EgressPolicy,
        content: Content,
    ) -> Result<Vec<Segment>, EgressError> {
        match content {
            Content::Bytes(bytes) => Ok(vec![Segment::Bytes(self.fill(policy, bytes)?)]),
            Content::Blob(blob) => Ok(vec![Segment::Blob(blob)]),
            Content::Composed(segments) => segments
                .into_iter()
                .map(|segment| match segment {
                    Segment::Bytes(bytes) => Ok(Segment::Bytes(self.fill(policy, bytes)?)),
                    Segment::Base64(_, rounds)
                        if rounds == 0 || rounds > base64_stream::MAX_ROUNDS =>
                    {
                        Err(EgressError::Invalid(format!(
                            "{rounds} base64 rounds; a segment takes 1 to {}",
                            base64_stream::MAX_ROUNDS
                        )))
                    }
                    other => Ok(other),
                })
                .collect(),
        }
    }

    async fn execute(
        &self,
        policy: &EgressPolicy,
        request: reqwest::RequestBuilder,
        target: ResponseTarget,
    ) -> Result<Response, EgressError> {
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = match target {
            ResponseTarget::Memory(max) => {
                let max = max.min(MAX_BUFFERED_BODY);
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                    if body.len() + chunk.len() > max {
                        return Err(EgressError::TooLarge(max as u64));
                    }
                    body.extend_from_slice(&chunk);
                }
                ResponseBody::Bytes(body)
            }
            ResponseTarget::Blob(store) => {
                let stream = response.bytes_stream().map_err(std::io::Error::other);
                match blobs::write_stream(store, stream, Some(policy.download_limit)).await {
                    Ok(blob) => ResponseBody::Blob(blob),
                    Err(error) if error.kind() == std::io::ErrorKind::FileTooLarge => {
                        return Err(EgressError::TooLarge(policy.download_limit));
                    }
                    Err(error) => return Err(stream_error(error)),
                }
            }
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn transport_error(error: reqwest::Error) -> EgressError {
    if error.is_timeout() {
        EgressError::Timeout
    } else {
        EgressError::Connection(error_chain(&error))
    }
}

fn stream_error(error: std::io::Error) -> EgressError {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
    {
        Some(inner) if inner.is_timeout() => EgressError::Timeout,
        _ => EgressError::Connection(error_chain(&error)),
    }
}

fn header_name(name: &str) -> Result<HeaderName, EgressError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| EgressError::Invalid(format!("header name {name:?}")))
}

fn header_value(value: &str) -> Result<HeaderValue, EgressError> {
    HeaderValue::from_str(value)
        .map_err(|_| EgressError::Invalid("a header value has a forbidden character".into()))
}

fn token(text: &str) -> Result<&str, EgressError> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    if valid {
        Ok(text)
    } else {
        Err(EgressError::Invalid(format!(
            "{text:?} is not a media type token"
        )))
    }
}

/// A Service Bus SAS token for the request's resource, valid for an hour.
fn service_bus_sas(url: &reqwest::Url, key_name: &str, key: &str) -> String {
    let resource =
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()).to_ascii_lowercase();
    let encoded = urlencoding::encode(&resource);
    let expiry = (SystemTime::now() + SAS_VALIDITY)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{encoded}\n{expiry}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "SharedAccessSignature sr={encoded}&sig={}&se={expiry}&skn={}",
        urlencoding::encode(&signature),
        urlencoding::encode(key_name)
    )
}

/// Request counts and time by plugin, destination and outcome.
#[derive(Default)]
pub struct EgressMetrics(Mutex<BTreeMap<(String, String, String), EgressCount>>);

/// One row of [`EgressMetrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EgressCount {
    /// Requests.
    pub requests: u64,
    /// Their total duration.
    pub seconds: f64,
}

impl EgressMetrics {
    fn record(&self, plugin: &str, destination: &str, outcome: &str, elapsed: Duration) {
        let mut rows = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let row = rows
            .entry((
                plugin.to_owned(),
                destination.to_owned(),
                outcome.to_owned(),
            ))
            .or_default();
        row.requests += 1;
        row.seconds += elapsed.as_secs_f64();
    }

    /// Every row: (plugin, destination, outcome) and its count.
    pub fn snapshot(&self) -> Vec<((String, String, String), EgressCount)> {
        let rows = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rows.iter()
            .map(|(key, count)| (key.clone(), *count))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sas_token_signs_the_resource_and_expiry_with_the_key() {
        let url = reqwest::Url::parse("https://Move-DPE.servicebus.windows.net/queue/messages?x=1")
            .unwrap();
        let token = service_bus_sas(&url, "RootManageSharedAccessKey", "c2VjcmV0");
        let fields: BTreeMap<&str, &str> = token
            .strip_prefix("SharedAccessSignature ")
            .unwrap()
            .split('&')
            .map(|pair| pair.split_once('=').unwrap())
            .collect();
        assert_eq!(
            fields["sr"],
            "https%3A%2F%2Fmove-dpe.servicebus.windows.net%2Fqueue%2Fmessages"
        );
        assert_eq!(fields["skn"], "RootManageSharedAccessKey");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"c2VjcmV0").unwrap();
        mac.update(format!("{}\n{}", fields["sr"], fields["se"]).as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(urlencoding::decode(fields["sig"]).unwrap(), expected);
    }
}
