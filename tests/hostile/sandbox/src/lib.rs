//! A hostile plugin whose `send` reaches for what WASI could give it: files, environment,
//! sockets.
//!
//! The host grants none of these, so each attempt must fail or come back empty. The rejection
//! text has one line per attempt (`fs-read-dir:`, `fs-read:`, `fs-write:`, `env:`,
//! `env-home:`, `tcp:`, `udp:`) with what std returned, for the test to assert on. The TCP
//! port comes from the setting `port` (default 80), so a test can point it at a listener that
//! would accept. A last line, `calls-before:`, counts the calls this instance's memory saw
//! before: a fresh instance per call must always say 0, however the host recycles memory.

use eformidling_sdk::transport::{Capabilities, Description};
use eformidling_sdk::types::{Failure, Incoming, Outgoing, Pending, Sent, StatusEvent};
use eformidling_sdk::{Guest, settings};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Calls this memory has served: zero-initialised, so it is 0 only in memory that was reset.
static CALLS: AtomicU32 = AtomicU32::new(0);

struct Prying;

impl Guest for Prying {
    fn describe() -> Description {
        Description {
            service: "HOSTILE".to_owned(),
            name: "Hostile: tries files, environment and sockets".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::SEND,
            max_message_size: None,
        }
    }

    fn poll_statuses(_pending: Vec<Pending>) -> Result<Vec<StatusEvent>, Failure> {
        Ok(Vec::new())
    }

    fn poll_incoming(_max: u32) -> Result<Vec<Incoming>, Failure> {
        Ok(Vec::new())
    }

    fn confirm_incoming(_reference: String) -> Result<(), Failure> {
        Ok(())
    }

    fn send(_message: Outgoing) -> Result<Sent, Failure> {
        let port = settings::parsed::<u16>("port")?.unwrap_or(80);
        let read_dir = std::fs::read_dir("/").map(|entries| entries.count());
        let read = std::fs::read("/etc/passwd").map(|bytes| bytes.len());
        let write = std::fs::write("/tmp/x", b"hostile");
        let vars = std::env::vars().count();
        let home = std::env::var("HOME");
        let tcp = TcpStream::connect(("127.0.0.1", port)).map(|stream| stream.peer_addr());
        let udp = UdpSocket::bind(("0.0.0.0", 0)).map(|socket| socket.local_addr());
        let calls_before = CALLS.fetch_add(1, Ordering::Relaxed);
        Err(Failure::Reject(format!(
            "fs-read-dir: {read_dir:?}\nfs-read: {read:?}\nfs-write: {write:?}\n\
             env: {vars} vars\nenv-home: {home:?}\ntcp: {tcp:?}\nudp: {udp:?}\n\
             calls-before: {calls_before}"
        )))
    }
}

eformidling_sdk::export!(Prying);
