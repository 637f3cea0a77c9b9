//! Shared ground for the end-to-end tests in `tests/`: where the plugin components are.
//!
//! The build script compiles the plugins workspace for wasm32-wasip2 before any test runs, so
//! a test loads a component by a path fixed at compile time and never builds anything itself.

/// Absolute paths of the plugin components, built in release by this crate's build script.
pub mod artifacts {
    /// The loopback reference channel (`plugins/loopback`), which talks to the simulators'
    /// loopback peer.
    pub const LOOPBACK: &str = env!("PLUGIN_LOOPBACK");

    /// The DPO channel over the Altinn 2 broker service (`plugins/dpo`).
    pub const DPO: &str = env!("PLUGIN_DPO");
    /// The example channel of the plugin author guide (`plugins/example`), which sends to the
    /// loopback peer and polls its statuses.
    pub const EXAMPLE: &str = env!("PLUGIN_EXAMPLE");
    /// The DPV channel (`plugins/dpv`): Altinn 2's correspondence agency.
    pub const DPV: &str = env!("PLUGIN_DPV");

    /// The DPE channel (`plugins/dpe`): eInnsyn over Azure Service Bus.
    pub const DPE: &str = env!("PLUGIN_DPE");
    /// The DPF channel (`plugins/dpf`): KS FIKS SvarUt and SvarInn.
    pub const DPF: &str = env!("PLUGIN_DPF");

    /// The DPI channel (`plugins/dpi`): digital post to citizens through corner 2.
    pub const DPI: &str = env!("PLUGIN_DPI");

    /// `send` panics with "hostile plugin panicked on purpose" (`tests/hostile/panic`).
    pub const HOSTILE_PANIC: &str = env!("PLUGIN_HOSTILE_PANIC");

    /// `send` spins forever without a host call (`tests/hostile/loop`).
    pub const HOSTILE_LOOP: &str = env!("PLUGIN_HOSTILE_LOOP");

    /// `send` allocates and writes memory until it dies (`tests/hostile/memory`).
    pub const HOSTILE_MEMORY: &str = env!("PLUGIN_HOSTILE_MEMORY");

    /// `send` requests the URL in setting `target` and rejects with `egress result: …`
    /// (`tests/hostile/egress`).
    pub const HOSTILE_EGRESS: &str = env!("PLUGIN_HOSTILE_EGRESS");

    /// `send` tries its own `authorization` header, Basic from the ungranted secret
    /// `not-granted`, and a placeholder for it in a body, against setting `endpoint`; rejects
    /// with lines `authorization:`, `basic:`, `placeholder:` (`tests/hostile/credentials`).
    pub const HOSTILE_CREDENTIALS: &str = env!("PLUGIN_HOSTILE_CREDENTIALS");

    /// `send` tries the filesystem, the environment, TCP (to setting `port`, default 80) and
    /// UDP; rejects with lines `fs-read-dir:`, `fs-read:`, `fs-write:`, `env: N vars`,
    /// `env-home:`, `tcp:`, `udp:`, and `calls-before: N`, the calls its memory served before
    /// (`tests/hostile/sandbox`).
    pub const HOSTILE_SANDBOX: &str = env!("PLUGIN_HOSTILE_SANDBOX");

    /// A component importing `acme:spy/exfiltrate@1.0.0`, which no host provides
    /// (`tests/hostile/foreign`).
    pub const HOSTILE_FOREIGN: &str = env!("PLUGIN_HOSTILE_FOREIGN");

    /// A plugin built against contract version 0.2.0: imports `eformidling:transport/log@0.2.0`
    /// (`tests/hostile/outdated`).
    pub const HOSTILE_OUTDATED: &str = env!("PLUGIN_HOSTILE_OUTDATED");

    /// A component exporting only `acme:other/api@1.0.0`, not `transport`
    /// (`tests/hostile/no-transport`).
    pub const HOSTILE_NO_TRANSPORT: &str = env!("PLUGIN_HOSTILE_NO_TRANSPORT");
}
pub mod channels;
pub mod harness;
pub mod network;
pub mod postgres;
pub mod process;
pub mod zip_stream;
