//! Loading checks a component against the host's world before any call: a foreign import, an
//! incompatible contract version or a missing `transport` export is refused with a message that
//! names the plugin file and the item.

use std::sync::Arc;

use integrasjonspunkt::secrets::Secrets;
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{TestHost, spec};

async fn load_error(file: &str) -> String {
    let host = TestHost::new(Secrets::new(), Arc::new(NoTokenService));
    let error = host.load(vec![("channel", spec(file))]).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(file),
        "the message names the file: {message}"
    );
    assert_eq!(host.plugins.current().generation(), 0, "nothing was loaded");
    message
}

#[tokio::test]
async fn a_foreign_import_is_refused_by_name() {
    let message = load_error(artifacts::HOSTILE_FOREIGN).await;
    assert!(
        message.contains("imports \"acme:spy/exfiltrate@1.0.0\", which this host does not provide"),
        "{message}"
    );
}

#[tokio::test]
async fn an_incompatible_contract_version_is_refused_by_name() {
    let message = load_error(artifacts::HOSTILE_OUTDATED).await;
    assert!(
        message.contains("imports \"eformidling:transport/log@0.2.0\", but this host serves eformidling:transport/log@0.1.0"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_transport_export_is_refused_by_name() {
    let message = load_error(artifacts::HOSTILE_NO_TRANSPORT).await;
    assert!(
        message.contains("does not export eformidling:transport/transport@0.1.0 (it exports: acme:other/api@1.0.0)"),
        "{message}"
    );
}
