//! Test set-ups of the real channels: each starts the provider's simulator beside the shared
//! [`crate::network::Network`] and configures integration points to carry that channel.

pub mod dpo;
