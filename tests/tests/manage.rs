//! `/manage` and the API's OpenAPI document on a started integration point: the open probes, the
//! health components, Prometheus metrics behind HTTP Basic that follow the messages, the build
//! and plugin information, and `/api-docs`.

use ip_tests::network::{Network, arkivmelding_sbd};
use reqwest::Method;
use serde_json::Value;

const SENDER: &str = "910075918";
const RECEIVER: &str = "910076787";

async fn open_get(url: &str) -> (u16, Value) {
    let answer = reqwest::get(url).await.expect("an answer");
    let status = answer.status().as_u16();
    let body = answer.bytes().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manage_reports_health_metrics_and_info() {
    let network = Network::start().await;
    let ip = network.integration_point(SENDER).await;

    // The probes and health are open; health shows each component.
    let (status, health) = open_get(&format!("{}/manage/health", ip.url)).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "UP");
    let components = &health["components"];
    assert_eq!(components["db"]["status"], "UP", "{health}");
    assert_eq!(components["db"]["details"]["database"], "SQLite");
    assert_eq!(
        components["plugins"]["components"]["loopback"]["status"], "UP",
        "{health}"
    );
    let queue = &components["nextMoveQueue"];
    assert_eq!(queue["status"], "UP", "{health}");
    for detail in [
        "outgoing",
        "oldestOutgoingAgeSeconds",
        "incoming",
        "deadLetters",
    ] {
        assert!(queue["details"][detail].is_number(), "{detail}: {health}");
    }
    for probe in ["liveness", "readiness"] {
        let (status, body) = open_get(&format!("{}/manage/health/{probe}", ip.url)).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &Value::from("UP")),
            "{probe}: {body}"
        );
    }
    let (_, readiness) = open_get(&format!("{}/manage/health/readiness", ip.url)).await;
    assert_eq!(readiness["components"]["plugins"]["details"]["plugins"], 1);

    // Metrics, info and the API document need credentials.
    for path in [
        "/manage/prometheus",
        "/manage/info",
        "/api-docs",
        "/v3/api-docs",
    ] {
        let (status, _) = open_get(&format!("{}{path}", ip.url)).await;
        assert_eq!(status, 401, "{path} is open");
    }

    let created = ip
        .post_json(
            "/api/messages/out",
            &arkivmelding_sbd(SENDER, RECEIVER, "vedtak.pdf"),
        )
        .await;
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());

    let scraped = ip
        .request(Method::GET, "/manage/prometheus")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scraped.text().await.unwrap();
    let sample = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let created_messages = text
        .lines()
        .find(|line| {
            line.starts_with("integrasjonspunkt_messages{direction=\"OUTGOING\",service=\"DPO\"")
                && line.contains("status=\"OPPRETTET\"")
        })
        .unwrap_or_else(|| panic!("no created message in\n{text}"));
    assert!(created_messages.ends_with(" 1"), "{created_messages}");
    assert_eq!(sample("integrasjonspunkt_database_up"), 1.0);
    assert_eq!(sample("integrasjonspunkt_outbox_messages "), 0.0);
    assert_eq!(sample("integrasjonspunkt_dead_letters "), 0.0);
    assert_eq!(sample("integrasjonspunkt_plugin_set_generation "), 1.0);
    assert!(
        sample(
            "integrasjonspunkt_plugin_call_duration_seconds_count{plugin=\"loopback\",operation=\"describe\"}"
        ) >= 1.0
    );
    assert!(
        sample(
            "integrasjonspunkt_plugin_call_duration_seconds_count{plugin=\"loopback\",operation=\"instantiate\"}"
        ) >= 1.0,
        "the health check instantiated the plugin"
    );

    let (status, info) = ip.get("/manage/info").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["name"], "integrasjonspunkt");
    assert!(info["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(info["profile"], "e2e");
    assert_eq!(info["environment"], "e2e");
    assert_eq!(info["organisationNumber"], SENDER);
    let plugin = &info["plugins"]["set"][0];
    assert_eq!(plugin["name"], "loopback", "{info}");
    assert_eq!(plugin["sha256"].as_str().map(str::len), Some(64), "{info}");
    assert!(plugin["service"].is_string() && plugin["version"].is_string());

    for path in ["/api-docs", "/v3/api-docs"] {
        let (status, document) = ip.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(document["openapi"], "3.0.3");
        assert!(document["paths"]["/api/messages/out"]["post"].is_object());
    }

    ip.service.stop().await;
}
