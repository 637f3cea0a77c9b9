//! Access tokens the host fetches for plugins' requests.
//!
//! Plugins name the Maskinporten scopes (or an Altinn exchange) a request needs; the host's token
//! service obtains, caches and attaches the token. This trait is the seam between the egress
//! chokepoint and that service, so the chokepoint stays the same whichever token service an
//! environment configures. [`TokenService`] is the real one: Maskinporten's JWT-bearer grant and,
//! where an environment reaches Altinn 3, the Altinn token exchange.

use std::sync::Arc;

use futures::future::BoxFuture;

mod altinn;
mod jwt;
mod maskinporten;
mod retry;
#[cfg(test)]
mod standin;

pub use altinn::{AltinnConfig, AltinnExchange};
pub use maskinporten::{ClientKey, Maskinporten, MaskinportenConfig};
pub use retry::Backoff;

/// Obtains tokens for the egress chokepoint.
pub trait TokenSource: Send + Sync {
    /// A Maskinporten access token carrying `scopes`.
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>>;
    /// A Maskinporten token for `scopes` exchanged for an Altinn token.
    fn altinn<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>>;
}

/// The token source of a host whose environment configures no token service: every request for a
/// token fails with a message that says so.
#[derive(Debug, Default)]
pub struct NoTokenService;

impl TokenSource for NoTokenService {
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            Err(format!(
                "no Maskinporten client is configured, so no token for scopes {}",
                scopes.join(" ")
            ))
        })
    }

    fn altinn<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            Err(format!(
                "no Maskinporten client is configured, so no Altinn token for scopes {}",
                scopes.join(" ")
            ))
        })
    }
}

/// Why no token could be had. Every message names the scopes asked for.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the request (a 4xx): asking again cannot help.
    #[error("{service} refused a token for scopes \"{scopes}\": HTTP {status}: {reason}")]
    Refused {
        /// Maskinporten or the Altinn token exchange.
        service: &'static str,
        /// The scopes, space-separated.
        scopes: String,
        /// The HTTP status.
        status: u16,
        /// The provider's `error` and `error_description`, or its answer's text.
        reason: String,
    },
    /// The provider could not be reached, or kept failing, through every retry.
    #[error("{service} gave no token for scopes \"{scopes}\" in {attempts} attempts: {reason}")]
    Unavailable {
        /// Maskinporten or the Altinn token exchange.
        service: &'static str,
        /// The scopes, space-separated.
        scopes: String,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        reason: String,
    },
    /// The provider answered, but not with a token.
    #[error("{service} answered no usable token for scopes \"{scopes}\": {reason}")]
    Malformed {
        /// Maskinporten or the Altinn token exchange.
        service: &'static str,
        /// The scopes, space-separated.
        scopes: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The assertion could not be signed.
    #[error("cannot sign the Maskinporten assertion for scopes \"{scopes}\": {reason}")]
    Signing {
        /// The scopes, space-separated.
        scopes: String,
        /// OpenSSL's reason.
        reason: String,
    },
}

/// The token source of an environment with a Maskinporten client and, optionally, the Altinn
/// token exchange.
pub struct TokenService {
    maskinporten: Arc<Maskinporten>,
    altinn: Option<AltinnExchange>,
}

impl TokenService {
    /// Tokens from `maskinporten`, and Altinn tokens from `altinn` where configured.
    pub fn new(maskinporten: Arc<Maskinporten>, altinn: Option<AltinnExchange>) -> Self {
        Self {
            maskinporten,
            altinn,
        }
    }
}

impl TokenSource for TokenService {
    fn maskinporten<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            self.maskinporten
                .token(scopes)
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn altinn<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            match &self.altinn {
                Some(altinn) => altinn
                    .token(scopes)
                    .await
                    .map_err(|error| error.to_string()),
                None => Err(format!(
                    "no Altinn token exchange is configured, so no Altinn token for scopes {}",
                    scopes.join(" ")
                )),
            }
        })
    }
}
