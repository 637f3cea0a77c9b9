//! Access tokens the host fetches for plugins' requests.
//!
//! Plugins name the Maskinporten scopes (or an Altinn exchange) a request needs; the host's token
//! service obtains, caches and attaches the token. This trait is the seam between the egress
//! chokepoint and that service, so the chokepoint stays the same whichever token service an
//! environment configures.

use futures::future::BoxFuture;

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
