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
        if let Err(failure) = &result {
            tracing::warn!(plugin = %self.name, operation, elapsed_ms = started.elapsed().as_millis() as u64, "{failure}");
        }
        result
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
