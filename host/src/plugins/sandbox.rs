//! What one plugin call runs inside: a fresh store with its limits, an empty WASI context, and
//! the plugin's context for the host imports.
//!
//! A store lives for exactly one call. A trap poisons an instance, and a guest's memory may hold
//! anything from an earlier message, so nothing survives a call; instantiating from the prepared
//! `InstancePre` costs microseconds. WASI is linked only because Rust's standard library imports
//! it: the guest gets no files, no environment, no arguments and no sockets, and its stdout and
//! stderr are captured (capped, never trapping) so a panic message reaches the host's error.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::egress::{Egress, EgressPolicy};
use crate::blobs::BlobStore;
use crate::crypto::BusinessCertificate;

/// How much guest output is kept per call.
const GUEST_OUTPUT_CAP: usize = 16 * 1024;

/// Services shared by every plugin call.
pub struct HostServices {
    /// The egress chokepoint.
    pub egress: Egress,
    /// Where blobs live.
    pub blobs: Arc<dyn BlobStore>,
    /// The organisation's business certificate for the `crypto` imports; without it they
    /// answer `unsupported`.
    pub certificate: Option<BusinessCertificate>,
}

/// What the host imports of one plugin need to know about it.
pub struct PluginContext {
    /// The plugin's name in the set.
    pub name: String,
    /// Its own settings.
    pub settings: BTreeMap<String, String>,
    /// Its network policy.
    pub policy: EgressPolicy,
    /// The shared services.
    pub services: Arc<HostServices>,
}

/// The data of one call's store.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) plugin: Arc<PluginContext>,
}

impl CallState {
    /// A call state whose memory is capped at `memory_bytes`, writing guest output to `output`.
    pub fn new(plugin: Arc<PluginContext>, memory_bytes: usize, output: GuestOutput) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(16)
            .memories(4)
            .tables(16)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            plugin,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A call's captured stdout and stderr, the first 16 KiB of it.
#[derive(Clone, Default)]
pub struct GuestOutput(Arc<Mutex<Vec<u8>>>);

impl GuestOutput {
    /// The captured text, trimmed.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = GUEST_OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
