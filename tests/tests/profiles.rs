//! Choosing the environment is configuration only: the same host, with only the profile changed,
//! loads the plugin file that environment names for a channel and sends through it to that
//! environment's endpoint.

use std::sync::Arc;

use integrasjonspunkt::config::{Config, LoadOptions};
use integrasjonspunkt::tokens::NoTokenService;
use ip_tests::artifacts;
use ip_tests::harness::{
    Sink, TestHost, file_sha256, loopback_environment, loopback_operator, outgoing, write_keystore,
};

#[tokio::test]
async fn only_the_profile_decides_which_plugin_a_channel_uses() {
    // SAFETY: set once, before any configuration is read, by this test alone.
    unsafe { std::env::set_var("IP_PROFILES_TEST_PASSWORD", "s3cret") };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::create_dir_all(root.join("plugins")).unwrap();
    // Two builds of the channel, as two environments would pin them.
    std::fs::copy(artifacts::LOOPBACK, root.join("plugins/loopback.wasm")).unwrap();
    let mut second = std::fs::read(artifacts::LOOPBACK).unwrap();
    append_custom_section(&mut second, "build", b"second build");
    std::fs::write(root.join("plugins/loopback-next.wasm"), second).unwrap();
    let first_digest = file_sha256(&root.join("plugins/loopback.wasm"));
    let second_digest = file_sha256(&root.join("plugins/loopback-next.wasm"));
    assert_ne!(first_digest, second_digest);

    let staging_sink = Sink::start().await;
    let local_sink = Sink::start().await;
    for (name, file, digest, service, sink) in [
        (
            "staging",
            "loopback.wasm",
            &first_digest,
            "LOOPBACK",
            &staging_sink,
        ),
        (
            "local",
            "loopback-next.wasm",
            &second_digest,
            "LOOPBACK-NEXT",
            &local_sink,
        ),
    ] {
        let environment = loopback_environment(
            name,
            "loopback",
            &format!("../plugins/{file}"),
            Some(digest),
            &sink.url,
            &format!(", service = \"{service}\""),
        );
        std::fs::write(root.join(format!("config/{name}.toml")), environment).unwrap();
    }
    let operator = loopback_operator("loopback", r#"{ env = "IP_PROFILES_TEST_PASSWORD" }"#);
    std::fs::write(root.join("integrasjonspunkt.toml"), operator).unwrap();
    write_keystore(root);

    for (profile, digest, service, sink, other) in [
        (
            "staging",
            &first_digest,
            "LOOPBACK",
            &staging_sink,
            &local_sink,
        ),
        (
            "local",
            &second_digest,
            "LOOPBACK-NEXT",
            &local_sink,
            &staging_sink,
        ),
    ] {
        let options = LoadOptions {
            profile: profile.into(),
            config_dir: root.join("config"),
            operator_file: Some(root.join("integrasjonspunkt.toml")),
            variables: vec![],
        };
        let config = Config::load(&options)
            .await
            .unwrap_or_else(|error| panic!("{profile}: {error}"));
        let host = TestHost::new(config.secrets.clone(), Arc::new(NoTokenService));
        host.plugins.load(&config.plugin_set()).await.unwrap();
        let plugin = host.plugins.plugin("loopback").unwrap();
        assert_eq!(&plugin.sha256(), digest, "{profile} loads the file it pins");
        assert_eq!(plugin.description().service, service);

        let before = other.received().len();
        plugin.send(&outgoing(vec![])).await.unwrap().expect("sent");
        let received = sink.received();
        assert_eq!(
            received.last().map(|r| r.uri.as_str()),
            Some("/messages"),
            "{profile} sends to its endpoint"
        );
        assert_eq!(
            other.received().len(),
            before,
            "{profile} never reaches the other environment"
        );
    }
}

/// Appends a custom section, which changes the file (and its digest) but not its behaviour:
/// a second build of the same source.
fn append_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut payload = Vec::new();
    leb128(&mut payload, name.len() as u64);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    wasm.push(0);
    leb128(wasm, payload.len() as u64);
    wasm.extend_from_slice(&payload);
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
