//! One loaded plugin and the calls into it.
//!
//! Loading does the expensive and fallible work once: read and pin-check the file, compile (or
//! load the cached artifact), check the component against the host's world, resolve its imports
//! into an `InstancePre`, and ask it to describe itself. A call then only instantiates into a fresh
//! store and runs, under the plugin's memory cap, its concurrency limit and a wall-clock timeout
//! that also covers time spent in host calls: the store yields at every epoch tick, so the timeout
//! can stop a guest that never calls the host as well as one waiting on the network.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, types::ComponentItem};

use super::allow_list::AllowList;
use super::bindings::{
    CONTRACT_VERSION, Channel, ChannelPre, Description, EXPORTED_INTERFACE, Failure,
    PROVIDED_INTERFACES, Pending, Sent, StatusEvent,
};
use super::cache::{CompileCache, Provenance};
use super::egress::EgressPolicy;
use super::engine::PluginEngine;
use super::message::{IncomingMessage, OutgoingMessage};
use super::sandbox::{CallState, GuestOutput, HostServices, PluginContext};
use super::spec::{Limits, PluginSpec};

/// A plugin ready to be called.
pub struct Plugin {
    name: String,
    path: PathBuf,
    sha256: String,
    description: Description,
    provenance: Provenance,
    limits: Limits,
    pre: ChannelPre<CallState>,
    context: Arc<PluginContext>,
    engine: wasmtime::Engine,
    permits: Semaphore,
    calls: CallMetrics,
}

/// What went wrong in a call, apart from the plugin's own classified failures.
#[derive(Debug)]
pub struct CallError {
    /// The plugin.
    pub plugin: String,
    /// The operation called.
    pub operation: &'static str,
    /// What happened.
    pub kind: CallErrorKind,
    /// The detail: the trap, and what the guest printed.
    pub detail: String,
}

/// The kinds of [`CallError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The guest trapped (a panic, an abort, a host function refusing an invariant).
    Trap,
    /// The guest went over its memory cap.
    MemoryLimit,
    /// The call ran past its timeout.
    Timeout,
    /// The plugin could not be instantiated (the instance pool is exhausted, say).
    Instantiation,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            CallErrorKind::Trap => "trapped",
            CallErrorKind::MemoryLimit => "went over its memory limit",
            CallErrorKind::Timeout => "timed out",
            CallErrorKind::Instantiation => "could not be instantiated",
        };
        write!(
            f,
            "plugin {} {kind} in {}: {}",
            self.plugin, self.operation, self.detail
        )
    }
}

impl std::error::Error for CallError {}

impl Plugin {
    /// Loads the plugin `name` as `spec` describes it; relative files are found from `base_dir`.
    pub async fn load(
        name: &str,
        spec: &PluginSpec,
        base_dir: &Path,
        engine: &PluginEngine,
        linker: &Linker<CallState>,
        cache: &CompileCache,
        services: Arc<HostServices>,
    ) -> anyhow::Result<Self> {
        let path = base_dir.join(&spec.file);
        let context = || format!("plugin {name} ({})", path.display());
        spec.limits
            .validate()
            .map_err(|reason| anyhow::anyhow!(reason))
            .with_context(context)?;
        let allowed = AllowList::parse(&spec.allowed_hosts)
            .map_err(|reason| anyhow::anyhow!(reason))
            .with_context(context)?;
        let wasm = tokio::fs::read(&path)
            .await
            .with_context(|| format!("plugin {name}: reading {}", path.display()))?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        if let Some(pinned) = &spec.sha256
            && !pinned.eq_ignore_ascii_case(&sha256)
        {
            anyhow::bail!(
                "plugin {name}: {} has sha256 {sha256}, but the configuration pins {pinned}",
                path.display()
            );
        }
        let (component, provenance) = {
            let (engine, cache, sha256) = (engine.clone(), cache.clone(), sha256.clone());
            tokio::task::spawn_blocking(move || cache.component(&engine, &sha256, &wasm))
                .await?
                .with_context(|| {
                    format!(
                        "plugin {name}: {} is not a loadable component",
                        path.display()
                    )
                })?
        };
        check_world(engine, &component).with_context(context)?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(context)?;
        let pre = ChannelPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(context)?;
        let policy = EgressPolicy {
            plugin: name.to_owned(),
            allowed,
            secrets: spec.secrets.iter().cloned().collect::<BTreeSet<_>>(),
            scopes: spec.scopes.iter().cloned().collect::<BTreeSet<_>>(),
            request_timeout: spec.limits.request_timeout(),
            download_limit: spec.limits.download_bytes(),
        };
        let mut plugin = Self {
            name: name.to_owned(),
            path: path.clone(),
            sha256,
            description: Description {
                service: String::new(),
                name: String::new(),
                version: String::new(),
                capabilities: super::bindings::Capabilities::empty(),
                max_message_size: None,
            },
            provenance,
            limits: spec.limits.clone(),
            pre,
            context: Arc::new(PluginContext {
                name: name.to_owned(),
                settings: spec.settings.clone(),
                policy,
                services,
            }),
            engine: engine.engine().clone(),
            permits: Semaphore::new(spec.limits.concurrency as usize),
            calls: CallMetrics::default(),
        };
        plugin.description = plugin.describe().await.with_context(context)?;
        Ok(plugin)
    }

    /// The plugin's name in its set.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's sha256, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What the plugin said about itself at load.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Whether this load compiled the component or used the cached artifact.
    pub fn provenance(&self) -> Provenance {
        self.provenance
    }

    /// Counts and latency of the calls into this plugin since it was loaded.
    pub fn call_metrics(&self) -> &CallMetrics {
        &self.calls
    }

    /// Instantiates the plugin in a fresh store and drops it: proves it can serve a call now.
    pub async fn check_instantiation(&self) -> Result<(), CallError> {
        self.call("instantiate", async |_, _| Ok(())).await
    }

    /// Asks the plugin to describe itself.
    pub async fn describe(&self) -> Result<Description, CallError> {
        self.call("describe", async |store, channel| {
            channel
                .eformidling_transport_transport()
                .call_describe(store)
                .await
        })
        .await
    }

    /// Hands one message to the channel.
    pub async fn send(
        &self,
        message: &OutgoingMessage,
    ) -> Result<Result<Sent, Failure>, CallError> {
        self.call("send", async |store, channel| {
            let outgoing = message.to_wit(store.data_mut())?;
            channel
                .eformidling_transport_transport()
                .call_send(store, &outgoing)
                .await
        })
        .await
    }

    /// New statuses of messages sent earlier.
    pub async fn poll_statuses(
        &self,
        pending: &[Pending],
    ) -> Result<Result<Vec<StatusEvent>, Failure>, CallError> {
        self.call("poll-statuses", async |store, channel| {
            channel
                .eformidling_transport_transport()
                .call_poll_statuses(store, pending)
                .await
        })
        .await
    }

    /// Up to `max` messages waiting at the provider.
    pub async fn poll_incoming(
        &self,
        max: u32,
    ) -> Result<Result<Vec<IncomingMessage>, Failure>, CallError> {
        self.call("poll-incoming", async |store, channel| {
            let polled = channel
                .eformidling_transport_transport()
                .call_poll_incoming(&mut *store, max)
                .await?;
            Ok(match polled {
                Ok(messages) => Ok(messages
                    .into_iter()
                    .map(|incoming| IncomingMessage::from_wit(incoming, store.data_mut()))
                    .collect::<wasmtime::Result<_>>()?),
                Err(failure) => Err(failure),
            })
        })
        .await
    }

    /// Tells the provider a received message is stored.
    pub async fn confirm_incoming(
        &self,
        reference: &str,
    ) -> Result<Result<(), Failure>, CallError> {
        self.call("confirm-incoming", async |store, channel| {
            channel
                .eformidling_transport_transport()
                .call_confirm_incoming(store, reference)
                .await
        })
        .await
    }

    /// Runs `operation` in a fresh instance under the plugin's limits.
    async fn call<R>(
        &self,
        operation: &'static str,
        run: impl AsyncFnOnce(&mut Store<CallState>, &Channel) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let error = |kind, detail: String| CallError {
            plugin: self.name.clone(),
            operation,
            kind,
            detail,
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| error(CallErrorKind::Instantiation, "the plugin is closed".into()))?;
        let output = GuestOutput::default();
        let state = CallState::new(
            self.context.clone(),
            self.limits.memory_bytes(),
            output.clone(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let started = Instant::now();
        let timeout = self.limits.call_timeout();
        let outcome = tokio::time::timeout(timeout, async {
            let channel = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| error(CallErrorKind::Instantiation, format!("{e:#}")))?;
            run(&mut store, &channel).await.map_err(|e| {
                let kind = classify(&e);
                error(kind, describe_trap(&e, &output.text()))
            })
        })
        .await;
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(error(
                CallErrorKind::Timeout,
                format!("no answer within {}", human(timeout)),
            )),
        };
        self.calls.record(
            operation,
            started.elapsed(),
            result.as_ref().err().map(|failure| failure.kind),
        );
        if let Err(failure) = &result {
            tracing::warn!(plugin = %self.name, operation, elapsed_ms = started.elapsed().as_millis() as u64, "{failure}");
        }
        result
    }
}

/// The operations [`Plugin`] calls, in the order [`CallMetrics`] keeps them.
const OPERATIONS: [&str; 6] = [
    "instantiate",
    "describe",
    "send",
    "poll-statuses",
    "poll-incoming",
    "confirm-incoming",
];

/// The kinds of [`CallError`] with their metric labels, in the order [`CallMetrics`] keeps them.
const FAILURE_KINDS: [(CallErrorKind, &str); 4] = [
    (CallErrorKind::Trap, "trap"),
    (CallErrorKind::MemoryLimit, "memory_limit"),
    (CallErrorKind::Timeout, "timeout"),
    (CallErrorKind::Instantiation, "instantiation"),
];

/// The upper bounds, in seconds, of the call latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct OperationCounters {
    calls: AtomicU64,
    micros: AtomicU64,
    /// Calls per latency bucket, not cumulative; slower calls than the last bound count only in
    /// `calls`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    failures: [AtomicU64; FAILURE_KINDS.len()],
}

/// Calls, failures and latency of one plugin by operation. Atomics only, so recording a call
/// never waits on a scrape or on another call.
#[derive(Default)]
pub struct CallMetrics([OperationCounters; OPERATIONS.len()]);

/// One operation's row of [`CallMetrics`].
#[derive(Clone, Debug, PartialEq)]
pub struct CallStats {
    /// The operation (`send`, `poll-statuses`, ...).
    pub operation: &'static str,
    /// Calls, failed ones included.
    pub calls: u64,
    /// Their total duration.
    pub seconds: f64,
    /// Per bound of [`LATENCY_BUCKETS`], the calls that took at most that long (cumulative).
    pub buckets: Vec<(f64, u64)>,
    /// Failed calls per kind (`trap`, `memory_limit`, `timeout`, `instantiation`).
    pub failures: Vec<(&'static str, u64)>,
}

impl CallMetrics {
    fn record(&self, operation: &str, elapsed: Duration, failure: Option<CallErrorKind>) {
        let Some(counters) = OPERATIONS
            .iter()
            .position(|known| *known == operation)
            .map(|index| &self.0[index])
        else {
            return;
        };
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            counters.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(kind) = failure
            && let Some(index) = FAILURE_KINDS.iter().position(|(known, _)| *known == kind)
        {
            counters.failures[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every operation called at least once.
    pub fn snapshot(&self) -> Vec<CallStats> {
        OPERATIONS
            .iter()
            .zip(&self.0)
            .filter_map(|(operation, counters)| {
                let calls = counters.calls.load(Ordering::Relaxed);
                if calls == 0 {
                    return None;
                }
                let mut cumulative = 0;
                // A call recorded while this reads may show in a bucket before its count does.
                let buckets = LATENCY_BUCKETS
                    .iter()
                    .zip(&counters.buckets)
                    .map(|(bound, count)| {
                        cumulative += count.load(Ordering::Relaxed);
                        (*bound, cumulative)
                    })
                    .collect();
                let failures = FAILURE_KINDS
                    .iter()
                    .zip(&counters.failures)
                    .map(|((_, label), count)| (*label, count.load(Ordering::Relaxed)))
                    .collect();
                Some(CallStats {
                    operation,
                    calls: calls.max(cumulative),
                    seconds: counters.micros.load(Ordering::Relaxed) as f64 / 1e6,
                    buckets,
                    failures,
                })
            })
            .collect()
    }
}

fn classify(error: &wasmtime::Error) -> CallErrorKind {
    if format!("{error:?}").contains("forcing trap when growing memory") {
        CallErrorKind::MemoryLimit
    } else {
        CallErrorKind::Trap
    }
}

fn describe_trap(error: &wasmtime::Error, output: &str) -> String {
    let trap = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if output.is_empty() {
        trap
    } else {
        format!("{trap}; the plugin printed: {output}")
    }
}

fn human(duration: Duration) -> String {
    if duration.as_millis().is_multiple_of(1000) {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Checks the component imports only what the host provides and exports `transport`, naming the
/// first item that does not match.
fn check_world(engine: &PluginEngine, component: &Component) -> anyhow::Result<()> {
    let compatible = |version: Option<&str>| {
        let ours = CONTRACT_VERSION
            .rsplit_once('.')
            .map(|(major_minor, _)| major_minor)
            .unwrap_or(CONTRACT_VERSION);
        version.is_some_and(|version| {
            version
                .rsplit_once('.')
                .is_some_and(|(major_minor, _)| major_minor == ours)
        })
    };
    let ty = component.component_type();
    for (name, item) in ty.imports(engine.engine()) {
        let (interface, version) = match name.split_once('@') {
            Some((interface, version)) => (interface, Some(version)),
            None => (name, None),
        };
        if interface.starts_with("wasi:") {
            continue;
        }
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            anyhow::bail!("imports {name:?}, which is not an interface this host provides");
        }
        if !PROVIDED_INTERFACES.contains(&interface) {
            anyhow::bail!(
                "imports {name:?}, which this host does not provide (it provides {} at {CONTRACT_VERSION}, and WASI 0.2)",
                PROVIDED_INTERFACES.join(", ")
            );
        }
        if !compatible(version) {
            anyhow::bail!("imports {name:?}, but this host serves {interface}@{CONTRACT_VERSION}");
        }
    }
    let exports: Vec<&str> = ty.exports(engine.engine()).map(|(name, _)| name).collect();
    let export = exports
        .iter()
        .find(|name| name.split('@').next() == Some(EXPORTED_INTERFACE));
    match export {
        None => anyhow::bail!(
            "does not export {EXPORTED_INTERFACE}@{CONTRACT_VERSION} (it exports: {})",
            exports.join(", ")
        ),
        Some(name) if !compatible(name.split_once('@').map(|(_, version)| version)) => {
            anyhow::bail!(
                "exports {name:?}, but this host calls {EXPORTED_INTERFACE}@{CONTRACT_VERSION}"
            )
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_metrics_count_calls_latency_buckets_and_failures_per_operation() {
        let metrics = CallMetrics::default();
        metrics.record("send", Duration::from_millis(3), None);
        metrics.record(
            "send",
            Duration::from_millis(200),
            Some(CallErrorKind::Timeout),
        );
        metrics.record("send", Duration::from_secs(60), Some(CallErrorKind::Trap));
        metrics.record("poll-statuses", Duration::from_millis(20), None);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 2, "operations never called are left out");
        let poll = &snapshot[1];
        assert_eq!((poll.operation, poll.calls), ("poll-statuses", 1));
        let send = &snapshot[0];
        assert_eq!((send.operation, send.calls), ("send", 3));
        assert!((send.seconds - 60.203).abs() < 1e-6, "{}", send.seconds);
        let bucket = |bound: f64| send.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(bucket(0.005), 1);
        assert_eq!(bucket(0.1), 1);
        assert_eq!(bucket(0.25), 2);
        assert_eq!(bucket(30.0), 2, "the 60 s call is only in the total");
        let failed = |kind: &str| send.failures.iter().find(|(k, _)| *k == kind).unwrap().1;
        assert_eq!(
            (failed("timeout"), failed("trap"), failed("memory_limit")),
            (1, 1, 0)
        );
    }

    #[test]
    fn every_operation_called_is_one_the_metrics_keep() {
        let source = include_str!("plugin.rs");
        let called: Vec<&str> = source
            .split("self.call(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(called.len(), OPERATIONS.len(), "{called:?}");
        for operation in called {
            assert!(
                OPERATIONS.contains(&operation),
                "{operation} is not counted"
            );
        }
    }
}
