//! The running binary reloads its plugin set on SIGHUP, keeps serving when the reloaded
//! configuration is broken, and stops cleanly on SIGINT.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::write_keystore;

/// The operator file: the organisation, its keystore, and the API user the test calls as.
fn operator() -> String {
    let hash = integrasjonspunkt::api::hash_password("operator password").unwrap();
    format!(
        r#"[organisation]
number = "910075918"

[keystore]
path = "keystore.p12"
password = {{ file = "keystore-password" }}

[logging]
central = false

[api.users.operator]
password-hash = "{hash}"
"#
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {}\r\n\
         Connection: close\r\n\r\n",
        // operator:operator password
        "b3BlcmF0b3I6b3BlcmF0b3IgcGFzc3dvcmQ="
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn generation(port: u16) -> Option<u64> {
    let response = get(port, "/manage/plugins")?;
    let body = response.split("\r\n\r\n").nth(1)?;
    serde_json::from_str::<serde_json::Value>(body).ok()?["generation"].as_u64()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "signal {signal} sent");
}

fn start(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_integrasjonspunkt"))
        .env_remove("IP_PROFILE")
        .env_remove("IP_CONFIG")
        .env_remove("IP_CONFIG_DIR")
        .env("IP__API__LISTEN", format!("127.0.0.1:{port}"))
        .arg("--config-dir")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"))
        .arg("--config")
        .arg(dir.join("integrasjonspunkt.toml"))
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sighup_reloads_a_good_set_and_keeps_the_old_one_when_the_new_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let operator = operator();
    std::fs::write(dir.path().join("integrasjonspunkt.toml"), &operator).unwrap();
    write_keystore(dir.path(), 365);
    let port = free_port();
    let mut child = start(dir.path(), port);

    wait_for("the first plugin set", || generation(port) == Some(1));
    signal(&child, libc::SIGHUP);
    wait_for("the reloaded set", || generation(port) == Some(2));

    // A configuration that no longer validates is rejected; the process keeps serving set 2.
    std::fs::write(
        dir.path().join("integrasjonspunkt.toml"),
        operator.replace("910075918", "910075917"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(generation(port), Some(2));
    assert!(get(port, "/manage/health").is_some_and(|response| response.contains("\"UP\"")));

    signal(&child, libc::SIGINT);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the process did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
