//! Fixtures the configuration tests share: a minimal environment file and a keystore.
//!
//! Every test file that declares `mod common` compiles all of it and uses a part, so unused
//! items are expected per test binary.
#![allow(dead_code)]

use std::path::Path;

/// An environment `test` with every required endpoint and a `dpo` channel and plugin.
pub const ENVIRONMENT: &str = r#"[environment]
name = "test"

[endpoints]
service-registry = "https://sr.example"
maskinporten = "https://mp.example/token"
maskinporten-audience = "https://mp.example/"
altinn-token-exchange = "https://altinn.example/exchange"
log-service = "logs.example:443"

[endpoints.channels.dpo]
broker-basic = "https://broker.example/Basic.svc"

[plugins.dpo]
file = "dpo.wasm"
allowed-hosts = ["https://broker.example"]
secrets = ["dpo"]
"#;

/// Writes `keystore.p12` (a business certificate for 910075918 valid `days` from yesterday) and
/// `keystore-password` into `dir`.
pub fn write_keystore(dir: &Path, days: u32) {
    let pki = simulators::pki::TestPki::new(&dir.join("pki")).unwrap();
    let issued = pki
        .issue("910075918", "Testetat", -1, days, "keystore-pw")
        .unwrap();
    std::fs::copy(issued.keystore, dir.join("keystore.p12")).unwrap();
    std::fs::write(dir.join("keystore-password"), "keystore-pw\n").unwrap();
}
