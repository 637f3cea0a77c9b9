//! Hostile plugins are contained: each misdeed fails only its own call, with an error that says
//! what happened, and the host keeps serving other calls meanwhile and afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integrasjonspunkt::plugins::bindings::Failure;
use integrasjonspunkt::plugins::{CallErrorKind, PluginSpec};
use integrasjonspunkt::secrets::{Secret, Secrets};
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{Sink, TestHost, outgoing, spec};

fn host() -> TestHost {
    let mut secrets = Secrets::new();
    secrets.insert(
        "not-granted",
        Secret::UsernamePassword {
            username: "someone".into(),
            password: "their-password".into(),
        },
    );
    secrets.insert(
        "peer",
        Secret::UsernamePassword {
            username: "agency".into(),
            password: "s3cret".into(),
        },
    );
    TestHost::new(secrets, Arc::new(NoTokenService))
}

fn with_settings(mut spec: PluginSpec, settings: &[(&str, String)]) -> PluginSpec {
    spec.settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    spec
}

fn rejected(result: Result<integrasjonspunkt::plugins::bindings::Sent, Failure>) -> String {
    match result {
        Err(Failure::Reject(text)) => text,
        other => panic!("expected the plugin to report a rejection, got {other:?}"),
    }
}

/// A well-behaved plugin answering while and after a hostile one misbehaves.
async fn healthy(host: &TestHost) {
    let plugin = host
        .plugins
        .plugin("healthy")
        .expect("the healthy plugin is loaded");
    let description = plugin.describe().await.expect("the healthy plugin answers");
    assert_eq!(description.service, "LOOPBACK");
}

#[tokio::test]
async fn a_panic_fails_that_call_with_the_panic_message_and_the_next_call_works() {
    let host = host();
    host.load(vec![
        ("panic", spec(artifacts::HOSTILE_PANIC)),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    let plugin = host.plugins.plugin("panic").unwrap();
    let error = plugin.send(&outgoing(vec![])).await.unwrap_err();
    assert_eq!(error.kind, CallErrorKind::Trap);
    assert!(
        error.detail.contains("hostile plugin panicked on purpose"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("plugin panic trapped in send"),
        "{error}"
    );
    // A fresh instance per call: the same plugin answers its next call.
    assert_eq!(plugin.describe().await.unwrap().service, "HOSTILE");
    healthy(&host).await;
}

#[tokio::test]
async fn an_endless_loop_times_out_while_other_calls_are_served() {
    let host = host();
    let mut looping = spec(artifacts::HOSTILE_LOOP);
    looping.limits.timeout_seconds = 1;
    host.load(vec![
        ("loop", looping),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    let plugin = host.plugins.plugin("loop").unwrap();
    let started = Instant::now();
    let looping = tokio::spawn(async move { plugin.send(&outgoing(vec![])).await });

    // While the guest spins, the host serves other calls.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        healthy(&host).await;
    }
    assert!(
        !looping.is_finished(),
        "the loop is still running while the others were served"
    );

    let error = looping.await.unwrap().unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind, CallErrorKind::Timeout, "{error}");
    assert!(
        error.to_string().contains("no answer within 1 s"),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    healthy(&host).await;
}

#[tokio::test]
async fn time_spent_waiting_in_a_host_call_counts_against_the_call_timeout() {
    let host = host();
    let sink = Sink::start().await;
    sink.hold_answers(Duration::from_secs(30));
    let mut slow = with_settings(
        spec(artifacts::LOOPBACK),
        &[
            ("endpoint", sink.url.clone()),
            ("identifier", "0192:910075918".into()),
            ("credentials", "peer".into()),
        ],
    );
    slow.allowed_hosts = vec![sink.url.clone()];
    slow.secrets = vec!["peer".into()];
    slow.limits.timeout_seconds = 1;
    host.load(vec![("slow", slow), ("healthy", spec(artifacts::LOOPBACK))])
        .await
        .unwrap();
    let started = Instant::now();
    let error = host
        .plugins
        .plugin("slow")
        .unwrap()
        .send(&outgoing(vec![]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, CallErrorKind::Timeout, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sink.received().len(),
        1,
        "the request was in flight when the call timed out"
    );
    healthy(&host).await;
}

#[tokio::test]
async fn unbounded_memory_growth_stops_at_the_cap() {
    let host = host();
    let mut memory = spec(artifacts::HOSTILE_MEMORY);
    memory.limits.memory_mib = 32;
    host.load(vec![
        ("memory", memory),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    let error = host
        .plugins
        .plugin("memory")
        .unwrap()
        .send(&outgoing(vec![]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, CallErrorKind::MemoryLimit, "{error}");
    assert!(
        error.to_string().contains("went over its memory limit"),
        "{error}"
    );
    healthy(&host).await;
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_and_never_contacted() {
    let host = host();
    let allowed = Sink::start().await;
    let forbidden = Sink::start().await;
    let mut egress = with_settings(
        spec(artifacts::HOSTILE_EGRESS),
        &[("target", format!("{}/steal", forbidden.url))],
    );
    egress.allowed_hosts = vec![allowed.url.clone()];
    host.load(vec![
        ("egress", egress),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    let text = rejected(
        host.plugins
            .plugin("egress")
            .unwrap()
            .send(&outgoing(vec![]))
            .await
            .unwrap(),
    );
    assert!(text.contains("Denied"), "{text}");
    assert!(
        text.contains(&format!(
            "{}:{} is not on the allow-list",
            "127.0.0.1",
            forbidden.address.port()
        )),
        "{text}"
    );
    assert!(
        forbidden.received().is_empty(),
        "the forbidden host was contacted"
    );

    let denied_rows = host
        .plugins
        .services()
        .egress
        .metrics()
        .snapshot()
        .into_iter()
        .filter(|((plugin, _, outcome), _)| plugin == "egress" && outcome == "denied")
        .map(|(_, count)| count.requests)
        .sum::<u64>();
    assert_eq!(denied_rows, 1, "the refusal is counted");
    healthy(&host).await;
}

#[tokio::test]
async fn a_plugin_cannot_set_authorization_nor_use_a_secret_not_granted_to_it() {
    let host = host();
    let sink = Sink::start().await;
    let mut credentials = with_settings(
        spec(artifacts::HOSTILE_CREDENTIALS),
        &[("endpoint", sink.url.clone())],
    );
    credentials.allowed_hosts = vec![sink.url.clone()];
    host.load(vec![
        ("credentials", credentials),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    let text = rejected(
        host.plugins
            .plugin("credentials")
            .unwrap()
            .send(&outgoing(vec![]))
            .await
            .unwrap(),
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {text}"))
            .to_owned()
    };
    assert!(
        line("authorization:").contains("may not set the authorization header"),
        "{text}"
    );
    let basic = line("basic:");
    assert!(
        basic.contains("not-granted") && basic.contains("is not granted to plugin credentials"),
        "{text}"
    );
    assert!(line("placeholder:").contains("not granted"), "{text}");
    assert!(
        !text.contains("their-password"),
        "the secret leaked into the plugin: {text}"
    );
    assert!(
        sink.received().is_empty(),
        "a refused request went out: {:?}",
        sink.received()
    );
    healthy(&host).await;
}

#[tokio::test]
async fn the_sandbox_has_no_files_environment_or_sockets() {
    let host = host();
    let listening = Sink::start().await;
    let sandbox = with_settings(
        spec(artifacts::HOSTILE_SANDBOX),
        &[("port", listening.address.port().to_string())],
    );
    host.load(vec![
        ("sandbox", sandbox),
        ("healthy", spec(artifacts::LOOPBACK)),
    ])
    .await
    .unwrap();
    // SAFETY: set before the call; the variable only proves the host's environment is not passed on.
    unsafe { std::env::set_var("IP_SANDBOX_PROBE", "host-only") };
    let text = rejected(
        host.plugins
            .plugin("sandbox")
            .unwrap()
            .send(&outgoing(vec![]))
            .await
            .unwrap(),
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {text}"))
            .to_owned()
    };
    for prefix in [
        "fs-read-dir:",
        "fs-read:",
        "fs-write:",
        "env-home:",
        "tcp:",
        "udp:",
    ] {
        let line = line(prefix);
        assert!(line.contains("Err"), "{prefix} was not refused: {line}");
    }
    assert_eq!(line("env:"), "env: 0 vars", "{text}");
    assert!(listening.received().is_empty());
    healthy(&host).await;
}

#[tokio::test]
async fn a_call_finds_nothing_an_earlier_call_left_in_memory() {
    let host = host();
    host.load(vec![("sandbox", spec(artifacts::HOSTILE_SANDBOX))])
        .await
        .unwrap();
    let plugin = host.plugins.plugin("sandbox").unwrap();
    // One after another, so that the pool hands the same memory slot back, then several at once.
    let mut texts = Vec::new();
    for _ in 0..5 {
        texts.push(rejected(plugin.send(&outgoing(vec![])).await.unwrap()));
    }
    let message = outgoing(vec![]);
    let together = futures::future::join_all((0..8).map(|_| plugin.send(&message))).await;
    texts.extend(together.into_iter().map(|answer| rejected(answer.unwrap())));
    for text in &texts {
        let counted = text
            .lines()
            .find(|line| line.starts_with("calls-before:"))
            .unwrap_or_else(|| panic!("no calls-before line in {text}"));
        assert_eq!(
            counted, "calls-before: 0",
            "a call saw the memory of an earlier one"
        );
    }
}
