//! The configuration service, asked the way a Spring Cloud Config client asks.

use reqwest::StatusCode;
use serde_json::{Value, json};
use simulators::config_service::{
    ConfigRequest, ConfigService, ConfigServiceConfig, PropertySource,
};

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_configured_environment_is_answered_in_the_spring_cloud_config_shape() {
    let service = ConfigService::start(ConfigServiceConfig {
        port: 0,
        environments: vec![(
            "integrasjonspunkt".into(),
            "staging".into(),
            vec![
                PropertySource::new("org-910075918", [("retry.max-hours", json!(24))]),
                PropertySource::new(
                    "integrasjonspunkt-staging",
                    [
                        ("logging.central", json!(true)),
                        ("retry.max-hours", json!(12)),
                    ],
                ),
            ],
        )],
    })
    .await
    .unwrap();
    let (status, answer) = get(&format!("{}/integrasjonspunkt/staging", service.base_url())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({
            "name": "integrasjonspunkt",
            "profiles": ["staging"],
            "label": null,
            "version": null,
            "state": null,
            "propertySources": [
                {"name": "org-910075918", "source": {"retry.max-hours": 24}},
                {"name": "integrasjonspunkt-staging",
                 "source": {"logging.central": true, "retry.max-hours": 12}},
            ],
        })
    );
    let (status, answer) = get(&format!(
        "{}/integrasjonspunkt/staging/master",
        service.base_url()
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["label"], "master");
}

#[tokio::test]
async fn an_unknown_application_or_profile_is_404_and_every_request_is_recorded() {
    let service = ConfigService::start(ConfigServiceConfig::default())
        .await
        .unwrap();
    let url = format!("{}/integrasjonspunkt/production", service.base_url());
    assert_eq!(get(&url).await.0, StatusCode::NOT_FOUND);
    service.set(
        "integrasjonspunkt",
        "production",
        vec![PropertySource::new("p", [("a.b", json!("c"))])],
    );
    let (status, answer) = get(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["propertySources"][0]["source"]["a.b"], "c");
    assert_eq!(
        get(&format!("{}/other/production", service.base_url()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let request = |application: &str, status| ConfigRequest {
        application: application.into(),
        profile: "production".into(),
        label: None,
        status,
    };
    assert_eq!(
        service.requests(),
        [
            request("integrasjonspunkt", 404),
            request("integrasjonspunkt", 200),
            request("other", 404),
        ]
    );
}

#[tokio::test]
async fn injected_faults_answer_503_then_service_resumes() {
    let service = ConfigService::start(ConfigServiceConfig::default())
        .await
        .unwrap();
    service.set("integrasjonspunkt", "staging", Vec::new());
    service.fail_next(1);
    let url = format!("{}/integrasjonspunkt/staging", service.base_url());
    assert_eq!(get(&url).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&url).await.0, StatusCode::OK);
    assert_eq!(
        service.requests().len(),
        1,
        "the refused request never reached the service"
    );
}
