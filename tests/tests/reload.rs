//! Reloading the plugin set: new calls use the new plugin, a call in flight finishes on the old
//! one, and a set that fails to load is rejected while the old one keeps serving. Driven through
//! the `/manage/plugins/reload` admin call, which re-reads the configuration as SIGHUP does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use integrasjonspunkt::config::LoadOptions;
use integrasjonspunkt::manage::{self, Reloader};
use integrasjonspunkt::secrets::{Secret, Secrets};
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{
    Sink, TestHost, blob_sha256, loopback_environment, loopback_operator, outgoing, write_keystore,
};
use tower::ServiceExt as _;

/// Writes the environment file `config/test.toml` naming the plugin `channel`, pinned when
/// `pin` is given, and an operator file enabling it; returns how to load them.
fn write_config(dir: &Path, sink: &str, pin: Option<&str>) -> LoadOptions {
    let environment = loopback_environment("test", "channel", "../channel.wasm", pin, sink, "");
    let operator = loopback_operator("channel", r#"{ file = "peer-password" }"#);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/test.toml"), environment).unwrap();
    std::fs::write(dir.join("integrasjonspunkt.toml"), operator).unwrap();
    std::fs::write(dir.join("peer-password"), "s3cret").unwrap();
    if !dir.join("keystore.p12").exists() {
        write_keystore(dir);
    }
    LoadOptions {
        profile: "test".into(),
        config_dir: dir.join("config"),
        operator_file: Some(dir.join("integrasjonspunkt.toml")),
        variables: vec![],
    }
}

async fn reload(router: &axum::Router) -> (StatusCode, serde_json::Value) {
    let response = router
        .clone()
        .oneshot(
            Request::post("/manage/plugins/reload")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn reload_swaps_the_set_atomically_and_rejects_a_broken_one() {
    let mut secrets = Secrets::new();
    secrets.insert(
        "peer",
        Secret::UsernamePassword {
            username: "agency".into(),
            password: "s3cret".into(),
        },
    );
    let host = TestHost::new(secrets, Arc::new(NoTokenService));
    let sink = Sink::start().await;
    let dir = host.dir.path().to_path_buf();
    std::fs::copy(artifacts::LOOPBACK, dir.join("channel.wasm")).unwrap();
    let options = write_config(&dir, &sink.url, None);
    let reloader = Arc::new(Reloader {
        options,
        plugins: host.plugins.clone(),
    });
    let router = manage::router(reloader);

    let (status, body) = reload(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["generation"], 1);
    let old = host.plugins.plugin("channel").unwrap();
    assert_eq!(old.description().service, "LOOPBACK");

    // A send that the sink holds in flight across the reload.
    sink.hold_answers(Duration::from_millis(1500));
    let document = host.blob(4096);
    let digest = blob_sha256(&document);
    let arrival = sink.arrival();
    let in_flight = tokio::spawn({
        let old = old.clone();
        let message = outgoing(vec![("main.pdf", document)]);
        async move { old.send(&message).await }
    });
    arrival.await;

    // Swap the plugin file on disk for another plugin and reload.
    std::fs::copy(artifacts::HOSTILE_PANIC, dir.join("channel.wasm")).unwrap();
    let (status, body) = reload(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["generation"], 2);
    let new = host.plugins.plugin("channel").unwrap();
    assert_eq!(
        new.description().service,
        "HOSTILE",
        "new calls use the new plugin"
    );
    assert_eq!(new.describe().await.unwrap().service, "HOSTILE");
    assert!(!in_flight.is_finished(), "the old call is still in flight");
    let sent = in_flight
        .await
        .unwrap()
        .expect("the call in flight finished on the old plugin");
    assert!(sent.is_ok(), "{sent:?}");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].uri.starts_with("/messages"));
    assert_ne!(
        received[0].sha256, digest,
        "the body is a multipart envelope, not the bare file"
    );

    // A broken file is rejected, naming the file, and the active set keeps serving.
    std::fs::write(dir.join("channel.wasm"), b"not a component").unwrap();
    let (status, body) = reload(&router).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("channel.wasm") && message.contains("not a loadable component"),
        "{message}"
    );
    assert_eq!(body["generation"], 2);
    assert_eq!(host.plugins.current().generation(), 2);
    assert_eq!(
        host.plugins
            .plugin("channel")
            .unwrap()
            .describe()
            .await
            .unwrap()
            .service,
        "HOSTILE"
    );

    // A file whose digest differs from the pin is rejected with both digests named.
    std::fs::copy(artifacts::LOOPBACK, dir.join("channel.wasm")).unwrap();
    let pinned = "0".repeat(64);
    write_config(&dir, &sink.url, Some(&pinned));
    let (status, body) = reload(&router).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&pinned) && message.contains("has sha256"),
        "{message}"
    );
    assert_eq!(
        host.plugins
            .plugin("channel")
            .unwrap()
            .description()
            .service,
        "HOSTILE"
    );

    // With the right pin the set loads.
    let actual = ip_tests::harness::file_sha256(&dir.join("channel.wasm"));
    write_config(&dir, &sink.url, Some(&actual));
    let (status, body) = reload(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["generation"], 3);
    assert_eq!(host.plugins.plugin("channel").unwrap().sha256(), actual);
}
