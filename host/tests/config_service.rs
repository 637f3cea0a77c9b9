//! The configuration service: its values arrive layered under the operator file, and when it is
//! down the host either refuses to start with a clear message or starts from the saved copy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use integrasjonspunkt::config::{Config, LoadOptions, Source};
use serde_json::json;

mod common;
use common::{ENVIRONMENT, write_keystore};

#[derive(Default)]
struct Service {
    down: AtomicBool,
    requests: AtomicUsize,
}

async fn answer(
    State(service): State<Arc<Service>>,
    UrlPath((application, profile)): UrlPath<(String, String)>,
) -> Response {
    service.requests.fetch_add(1, Ordering::SeqCst);
    if service.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if application != "integrasjonspunkt" || profile != "staging" {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({
        "name": application,
        "profiles": [profile],
        "propertySources": [
            { "name": "integrasjonspunkt-910075918.properties", "source": { "retry.max-hours": 48, "polling.incoming-seconds": 7 } },
            { "name": "integrasjonspunkt.properties", "source": { "polling.incoming-seconds": 99, "webhooks.read-timeout-ms": 2500 } }
        ]
    }))
    .into_response()
}

async fn start() -> (String, Arc<Service>) {
    let service = Arc::new(Service::default());
    let app = axum::Router::new()
        .route("/{application}/{profile}", axum::routing::get(answer))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, service)
}

fn files(dir: &std::path::Path, url: &str, when_unreachable: &str) -> LoadOptions {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/staging.toml"),
        ENVIRONMENT.replace("name = \"test\"", "name = \"staging\""),
    )
    .unwrap();
    let operator = format!(
        r#"[organisation]
number = "910075918"

[keystore]
path = "keystore.p12"
password = {{ file = "keystore-password" }}

[retry]
max-hours = 24

[config-service]
url = "{url}"
attempts = 2
when-unreachable = "{when_unreachable}"
"#
    );
    std::fs::write(dir.join("integrasjonspunkt.toml"), operator).unwrap();
    if !dir.join("keystore.p12").exists() {
        write_keystore(dir, 365);
    }
    LoadOptions {
        profile: "staging".into(),
        config_dir: dir.join("config"),
        operator_file: Some(dir.join("integrasjonspunkt.toml")),
        variables: vec![],
    }
}

#[tokio::test]
async fn service_values_arrive_under_the_operator_file_and_the_saved_copy_serves_when_it_is_down() {
    let (url, service) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let options = files(dir.path(), &url, "use-saved-copy");

    let config = Config::load(&options).await.unwrap();
    assert_eq!(
        config.settings.polling.incoming_seconds, 7,
        "the first property source wins"
    );
    assert_eq!(config.settings.webhooks.read_timeout_ms, 2500);
    assert_eq!(
        config.settings.retry.max_hours, 24,
        "the operator file wins over the service"
    );
    assert_eq!(
        config.layers.sources().get("polling.incoming-seconds"),
        Some(&Source::ConfigurationService(
            "integrasjonspunkt-910075918.properties".into()
        ))
    );
    assert!(
        dir.path()
            .join("data/config-service/integrasjonspunkt-staging.json")
            .is_file()
    );

    service.down.store(true, Ordering::SeqCst);
    let before = service.requests.load(Ordering::SeqCst);
    let config = Config::load(&options).await.unwrap();
    assert_eq!(
        service.requests.load(Ordering::SeqCst) - before,
        2,
        "retried as configured"
    );
    assert_eq!(config.settings.polling.incoming_seconds, 7);
    assert!(matches!(
        config.layers.sources().get("polling.incoming-seconds"),
        Some(Source::SavedConfiguration(_))
    ));
}

#[tokio::test]
async fn an_unreachable_service_fails_the_start_with_a_clear_message_when_so_configured() {
    let (url, service) = start().await;
    service.down.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let error = Config::load(&files(dir.path(), &url, "fail"))
        .await
        .unwrap_err();
    let problem = &error.0[0];
    assert_eq!(problem.key, "config-service");
    assert!(
        problem.location.ends_with("integrasjonspunkt.toml:11"),
        "the section header: {error}"
    );
    assert!(
        problem
            .reason
            .contains("is unreachable after 2 attempts (HTTP 503 Service Unavailable)"),
        "{error}"
    );
    assert!(problem.reason.contains("use-saved-copy"), "{error}");

    let error = Config::load(&files(dir.path(), &url, "use-saved-copy"))
        .await
        .unwrap_err();
    assert!(
        error.0[0].reason.contains("there is no saved copy"),
        "{error}"
    );
}
