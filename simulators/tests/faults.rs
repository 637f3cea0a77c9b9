//! Run-time fault injection, driven both through a handle and through the `/_faults` control
//! endpoint another process would use, on the configuration service (any HTTP simulator serves
//! through the same layer).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use simulators::config_service::{ConfigService, ConfigServiceConfig};
use simulators::faults::{Fault, Span};

async fn service() -> (ConfigService, String) {
    let service = ConfigService::start(ConfigServiceConfig {
        port: 0,
        environments: vec![("integrasjonspunkt".into(), "local".into(), Vec::new())],
    })
    .await
    .unwrap();
    let url = format!("{}/integrasjonspunkt/local", service.base_url());
    (service, url)
}

async fn control(service: &ConfigService, rule: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/_faults", service.base_url()))
        .header("content-type", "application/json")
        .body(rule.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn latency_delays_the_answer_for_the_requests_it_was_set_for() {
    let (service, url) = service().await;
    let set = control(
        &service,
        json!({ "kind": "latency", "millis": 400, "requests": 1 }),
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);
    let active: Value = serde_json::from_slice(&set.bytes().await.unwrap()).unwrap();
    assert_eq!(active[0]["kind"], "latency");
    assert_eq!(active[0]["requests_left"], 1);

    let started = Instant::now();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(service.faults().active().is_empty());
}

#[tokio::test]
async fn a_share_of_requests_is_answered_with_the_error_asked_for() {
    let (service, url) = service().await;
    service
        .faults()
        .add(
            Fault::Error {
                status: 502,
                share: 0.5,
            },
            Span::Requests(6),
        )
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(reqwest::get(&url).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 502, 200, 502, 200, 502, 200, 200]);
    // The service saw only the requests the rule let through.
    assert_eq!(service.requests().len(), 5);
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_at_all() {
    let (service, url) = service().await;
    let set = control(&service, json!({ "kind": "drop", "requests": 1 })).await;
    assert_eq!(set.status(), StatusCode::OK);
    let error = reqwest::get(&url).await.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(error.status().is_none());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_time_window_ends_by_itself_and_clear_ends_every_rule() {
    let (service, url) = service().await;
    let set = control(&service, json!({ "kind": "error", "seconds": 1.0 })).await;
    assert_eq!(set.status(), StatusCode::OK);
    for _ in 0..3 {
        let status = reqwest::get(&url).await.unwrap().status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);

    control(&service, json!({ "kind": "error", "seconds": 60 })).await;
    let cleared = reqwest::Client::new()
        .delete(format!("{}/_faults", service.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn fail_next_still_works_and_bad_rules_are_refused_with_a_reason() {
    let (service, url) = service().await;
    service.fail_next(1);
    let status = reqwest::get(&url).await.unwrap().status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);

    for rule in [
        json!({ "kind": "teapot", "requests": 1 }),
        json!({ "kind": "error", "status": 404, "requests": 1 }),
        json!({ "kind": "drop" }),
        json!({ "kind": "latency", "requests": 1 }),
    ] {
        let refused = control(&service, rule.clone()).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{rule}");
        let body: Value = serde_json::from_slice(&refused.bytes().await.unwrap()).unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    assert!(service.faults().active().is_empty());
}
