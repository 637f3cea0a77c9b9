//! Configuration: layering, the sources of values, and one test per validation failure, each
//! asserting that the message names the file (with its line) and the key.

use std::path::{Path, PathBuf};

use integrasjonspunkt::config::{Config, ConfigError, LoadOptions, Source};

mod common;
use common::{ENVIRONMENT, write_keystore};

const OPERATOR: &str = r#"[organisation]
number = "910075918"

[keystore]
path = "keystore.p12"
password = { file = "keystore-password" }

[retry]
max-hours = 24
"#;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    /// The test environment and operator file, with `tables` added to the operator file.
    fn with_operator_tables(tables: &str) -> Self {
        Self::new(ENVIRONMENT, &format!("{OPERATOR}\n{tables}"))
    }

    fn new(environment: &str, operator: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/test.toml"), environment).unwrap();
        std::fs::write(dir.path().join("integrasjonspunkt.toml"), operator).unwrap();
        write_keystore(dir.path(), 365);
        Self { dir }
    }

    fn operator(&self) -> PathBuf {
        self.dir.path().join("integrasjonspunkt.toml")
    }

    fn environment(&self) -> PathBuf {
        self.dir.path().join("config/test.toml")
    }

    fn options(&self, variables: &[(&str, &str)]) -> LoadOptions {
        LoadOptions {
            profile: "test".into(),
            config_dir: self.dir.path().join("config"),
            operator_file: Some(self.operator()),
            variables: variables
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn load(&self, variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&self.options(variables)).await
    }
}

fn located(error: &ConfigError, file: &Path, line: usize, key: &str) -> String {
    let wanted = format!("{}:{line}", file.display());
    let problem = error
        .0
        .iter()
        .find(|problem| problem.key == key)
        .unwrap_or_else(|| panic!("no problem about {key} in:\n{error}"));
    assert_eq!(problem.location, wanted, "{error}");
    problem.reason.clone()
}

#[tokio::test]
async fn layers_apply_in_order_and_each_value_knows_its_source() {
    let files = Files::new(ENVIRONMENT, OPERATOR);
    let config = files
        .load(&[("IP__POLLING__STATUSES_SECONDS", "5")])
        .await
        .unwrap();
    assert_eq!(config.settings.retry.max_hours, 24);
    assert_eq!(config.settings.polling.statuses_seconds, 5);
    assert_eq!(
        config.layers.sources().get("retry.max-hours"),
        Some(&Source::OperatorFile {
            path: files.operator(),
            line: 9
        })
    );
    assert_eq!(
        config.layers.sources().get("endpoints.service-registry"),
        Some(&Source::EnvironmentFile {
            path: files.environment(),
            line: 5
        })
    );
    let described = config.describe();
    assert!(described.contains("polling.statuses-seconds = 5  # environment variable: environment variable IP__POLLING__STATUSES_SECONDS"), "{described}");
    assert!(
        described.contains("retry.initial-seconds = 10  # default"),
        "{described}"
    );
    assert!(
        described.contains("keystore.password.file = \"keystore-password\""),
        "{described}"
    );
    assert_eq!(config.certificate.organisation_number(), Some("910075918"));
}

#[tokio::test]
async fn an_unknown_key_is_named_with_the_nearest_known_one() {
    let files = Files::new(
        ENVIRONMENT,
        &OPERATOR.replace("max-hours = 24", "max-hour = 24"),
    );
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 9, "retry.max-hour");
    assert_eq!(reason, "unknown key; did you mean retry.max-hours?");
}

#[tokio::test]
async fn the_outbox_concurrency_is_set_by_the_operator_and_never_zero() {
    let files = Files::with_operator_tables("[outbox]\nconcurrency = 32\n");
    let config = files.load(&[]).await.unwrap();
    assert_eq!(config.settings.outbox.concurrency, 32);
    let defaulted = Files::new(ENVIRONMENT, OPERATOR).load(&[]).await.unwrap();
    assert_eq!(
        defaulted.settings.outbox.concurrency, 10,
        "the real one's default"
    );

    let files = Files::with_operator_tables("[outbox]\nconcurrency = 0\n");
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 12, "outbox.concurrency");
    assert!(reason.contains("at least 1"), "{reason}");
}

#[tokio::test]
async fn a_wrong_type_is_named_with_file_line_and_key() {
    let files = Files::new(
        ENVIRONMENT,
        &OPERATOR.replace("max-hours = 24", "max-hours = \"a day\""),
    );
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 9, "retry.max-hours");
    assert!(reason.contains("invalid type"), "{reason}");
}

#[tokio::test]
async fn a_missing_required_value_is_named() {
    let files = Files::new(
        ENVIRONMENT,
        &OPERATOR.replace("number = \"910075918\"\n", ""),
    );
    let error = files.load(&[]).await.unwrap_err();
    let problem = error
        .0
        .iter()
        .find(|p| p.key == "organisation.number")
        .expect("a problem about organisation.number");
    assert_eq!(problem.reason, "a required value is missing");
    assert!(
        problem
            .location
            .starts_with(&files.operator().display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn an_organisation_number_failing_mod_11_is_refused() {
    let files = Files::new(ENVIRONMENT, &OPERATOR.replace("910075918", "910075917"));
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 2, "organisation.number");
    assert!(reason.contains("mod-11"), "{reason}");
}

#[tokio::test]
async fn a_channel_enabled_without_plugin_or_endpoint_is_refused() {
    let files = Files::with_operator_tables("[channels]\nenabled = [\"dpx\"]\n");
    let error = files.load(&[]).await.unwrap_err();
    let reasons: Vec<&str> = error
        .0
        .iter()
        .filter(|p| p.key == "channels.enabled")
        .map(|p| p.reason.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("names no plugin for it ([plugins.dpx])")),
        "{error}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("names no endpoint for it ([endpoints.channels.dpx])")),
        "{error}"
    );
    located(&error, &files.operator(), 12, "channels.enabled");
}

#[tokio::test]
async fn an_allow_list_that_does_not_cover_the_endpoints_is_refused() {
    let environment = ENVIRONMENT.replace(
        "allowed-hosts = [\"https://broker.example\"]",
        "allowed-hosts = [\"https://other.example\"]",
    );
    let files = Files::new(&environment, OPERATOR);
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(
        &error,
        &files.environment(),
        16,
        "plugins.dpo.allowed-hosts",
    );
    assert!(
        reason.contains("does not cover endpoints.channels.dpo.broker-basic"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_variable_override_that_breaks_a_value_is_named_by_its_variable() {
    let files = Files::new(ENVIRONMENT, OPERATOR);
    let error = files
        .load(&[("IP__API__LISTEN", "not-an-address")])
        .await
        .unwrap_err();
    let problem = error
        .0
        .iter()
        .find(|p| p.key == "api.listen")
        .expect("a problem about api.listen");
    assert_eq!(problem.location, "environment variable IP__API__LISTEN");
}

#[tokio::test]
async fn a_profile_without_an_environment_file_is_refused() {
    let files = Files::new(ENVIRONMENT, OPERATOR);
    let mut options = files.options(&[]);
    options.profile = "prod".into();
    let error = Config::load(&options).await.unwrap_err();
    assert!(error.0[0].location.ends_with("config/prod.toml"), "{error}");
    assert!(
        error.0[0]
            .reason
            .contains("no environment file for profile \"prod\""),
        "{error}"
    );
}

#[tokio::test]
async fn secrets_of_enabled_channels_must_resolve() {
    let operator = format!(
        "{OPERATOR}\n[channels]\nenabled = [\"dpo\"]\n\n[secrets.dpo]\nusername = \"system\"\npassword = {{ file = \"dpo-password\" }}\n"
    );
    let files = Files::new(ENVIRONMENT, &operator);
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 16, "secrets.dpo.password");
    assert!(reason.contains("dpo-password"), "{reason}");

    std::fs::write(files.dir.path().join("dpo-password"), "s3cret\n").unwrap();
    let config = files.load(&[]).await.unwrap();
    assert_eq!(
        config
            .secrets
            .get("dpo")
            .and_then(|s| s.field(Some("password"))),
        Some("s3cret")
    );
    assert!(!config.describe().contains("s3cret"));
    let set = config.plugin_set();
    assert_eq!(
        set.plugins["dpo"].settings["broker-basic"],
        "https://broker.example/Basic.svc"
    );
}

/// The endpoints the environment overview (DESIGN.md) gives for each environment.
const PRODUCTION_OVERVIEW: [&str; 7] = [
    "www.altinn.no/ServiceEngineExternal/BrokerServiceExternalBasic",
    "www.altinn.no/ServiceEngineExternal/BrokerServiceExternalBasicStreamed",
    "www.altinn.no/ServiceEngineExternal/CorrespondenceAgencyExternal",
    "svarut.ks.no/tjenester/forsendelseservice",
    "svarut.ks.no/tjenester/svarinn",
    "qaoffentlig.meldingsformidler.digipost.no",
    "move-dpe-prod.servicebus.windows.net",
];
const STAGING_OVERVIEW: [&str; 7] = [
    "beta-meldingsutveksling.difi.no",
    "oidc-ver1.difi.no",
    "tt02.altinn.no",
    "test.svarut.ks.no",
    "move-dpe.servicebus.windows.net",
    "fiks-address-mock",
    "brreg-facade",
];

async fn repository_environment(profile: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("integrasjonspunkt.toml");
    std::fs::write(&operator, OPERATOR).unwrap();
    write_keystore(dir.path(), 365);
    let options = LoadOptions {
        profile: profile.into(),
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"),
        operator_file: Some(operator),
        variables: vec![],
    };
    Config::load(&options)
        .await
        .unwrap_or_else(|error| panic!("{profile}: {error}"))
}

#[tokio::test]
async fn config_check_lists_every_endpoint_of_the_overview() {
    for (profile, overview) in [
        ("production", PRODUCTION_OVERVIEW),
        ("staging", STAGING_OVERVIEW),
    ] {
        let described = repository_environment(profile).await.describe();
        for endpoint in overview {
            let line = described
                .lines()
                .find(|line| line.contains(endpoint))
                .unwrap_or_else(|| panic!("{profile} does not list {endpoint}:\n{described}"));
            assert!(line.contains(&format!("config/{profile}.toml")), "{line}");
        }
    }
}

#[test]
fn the_binary_checks_production_without_a_profile_and_exits_non_zero_on_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let operator = dir.path().join("integrasjonspunkt.toml");
    std::fs::write(&operator, OPERATOR).unwrap();
    write_keystore(dir.path(), 365);
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let check = |operator: &Path, profile: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_integrasjonspunkt"));
        command
            .env_remove("IP_PROFILE")
            .env_remove("IP_CONFIG")
            .env_remove("IP_CONFIG_DIR");
        command
            .arg("--config-dir")
            .arg(&config_dir)
            .arg("--config")
            .arg(operator);
        if let Some(profile) = profile {
            command.args(["--profile", profile]);
        }
        command.args(["config", "check"]).output().unwrap()
    };
    let output = check(&operator, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("# profile production"), "{stdout}");

    let output = check(&operator, Some("staging"));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("# profile staging"));

    std::fs::write(&operator, OPERATOR.replace("910075918", "123456789")).unwrap();
    let output = check(&operator, None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2: organisation.number", operator.display())),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing is printed as resolved when the check fails"
    );
}

#[tokio::test]
async fn an_unreadable_keystore_or_a_wrong_password_is_named() {
    let files = Files::new(
        ENVIRONMENT,
        &OPERATOR.replace("path = \"keystore.p12\"", "path = \"missing.p12\""),
    );
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 5, "keystore.path");
    assert!(
        reason.contains("missing.p12") && reason.contains("cannot read"),
        "{reason}"
    );

    let files = Files::new(ENVIRONMENT, OPERATOR);
    std::fs::write(files.dir.path().join("keystore-password"), "not-it").unwrap();
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 6, "keystore.password");
    assert!(
        reason.contains("wrong password") && reason.contains("keystore.p12"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_expired_business_certificate_stops_the_start_with_its_dates() {
    let files = Files::new(ENVIRONMENT, OPERATOR);
    let pki = simulators::pki::TestPki::new(&files.dir.path().join("old")).unwrap();
    let issued = pki
        .issue("910075918", "Testetat", -400, 30, "keystore-pw")
        .unwrap();
    std::fs::copy(issued.keystore, files.dir.path().join("keystore.p12")).unwrap();
    let error = files.load(&[]).await.unwrap_err();
    let reason = located(&error, &files.operator(), 5, "keystore.path");
    assert!(reason.contains("expired"), "{reason}");
}
