//! The simulators as one process, for running the local profile by hand or from `cargo xtask`.
//!
//! Each service listens on its own fixed loopback port so the local environment file can name
//! it; logs go to stdout so a developer sees every request a stand-in refused and why. Start-up
//! is mostly RSA key generation, so every key (business certificates', SvarUt's, the DPI
//! meldingsformidler's, Maskinporten's, the Altinn exchange's) is made side by side on other
//! threads while the CA is made, and a key cache
//! directory keeps them all for the next start ([`TestPki::open`]); the time start-up took is
//! printed under the table.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use simulators::altinn_broker::{self, AltinnBroker, AltinnBrokerConfig};
use simulators::altinn_correspondence::{self, AltinnCorrespondence, AltinnCorrespondenceConfig};
use simulators::altinn_exchange::{AltinnExchange, AltinnExchangeConfig};
use simulators::config_service::{ConfigService, ConfigServiceConfig};
use simulators::dpi::{Meldingsformidler, MeldingsformidlerConfig, providers_from_fixture};
use simulators::fixture::Fixture;
use simulators::log_sink::{LogSink, LogSinkConfig};
use simulators::loopback_peer::{DEFAULT_MAX_PACKAGE_SIZE, LoopbackPeer, LoopbackPeerConfig};
use simulators::maskinporten::{Maskinporten, MaskinportenConfig};
use simulators::pki::{MELDINGSFORMIDLER_ORGNR, SVARUT_ORGNR, TestPki};
use simulators::registers::{RegisterPorts, Registers, RegistersConfig};
use simulators::registry::{REGISTRY_ORGNR, RegistryConfig, ServiceRegistry};
use simulators::service_bus::{DEFAULT_MAX_MESSAGE_SIZE, ServiceBus, ServiceBusConfig};
use simulators::svarut::{self, SvarUt, SvarUtConfig};
use tracing_subscriber::EnvFilter;

/// The name Maskinporten's signing key is kept under in the key cache.
const MASKINPORTEN_KEY: &str = "maskinporten";
/// The name the Altinn token exchange's signing key is kept under in the key cache.
const ALTINN_EXCHANGE_KEY: &str = "altinn-exchange";

/// Offline stand-ins for the services the integration point talks to.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port of the loopback peer on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_LOOPBACK_PORT", default_value_t = 7101)]
    loopback_port: u16,

    /// HTTP Basic username the loopback peer requires.
    #[arg(long, env = "SIMULATORS_LOOPBACK_USERNAME", default_value = "loopback")]
    loopback_username: String,

    /// HTTP Basic password the loopback peer requires.
    #[arg(long, env = "SIMULATORS_LOOPBACK_PASSWORD", hide_env_values = true)]
    loopback_password: String,

    /// Largest package the loopback peer accepts, in bytes.
    #[arg(long, env = "SIMULATORS_LOOPBACK_MAX_PACKAGE_SIZE", default_value_t = DEFAULT_MAX_PACKAGE_SIZE)]
    loopback_max_package_size: u64,

    /// Port of the Maskinporten token endpoint (`/token`) and JWK set (`/jwk`) on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_MASKINPORTEN_PORT", default_value_t = 7111)]
    maskinporten_port: u16,

    /// The `aud` Maskinporten requires in assertions, and the `iss` of its tokens.
    #[arg(
        long,
        env = "SIMULATORS_MASKINPORTEN_AUDIENCE",
        default_value = "http://127.0.0.1:7111/"
    )]
    maskinporten_audience: String,

    /// The scopes Maskinporten grants.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "eformidling:dpo,eformidling:dpe,eformidling:dpv,eformidling:dpf,\
eformidling:dph,eformidling:dpi,digitalpostinnbygger:send,global/kontaktinformasjon.read,\
global/sikkerdigitalpost.read,global/varslingsstatus.read,global/sertifikat.read,\
global/navn.read,global/postadresse.read"
    )]
    maskinporten_scopes: Vec<String>,

    /// Port of the Altinn token exchange on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_ALTINN_EXCHANGE_PORT", default_value_t = 7112)]
    altinn_exchange_port: u16,

    /// Port of the configuration service on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_CONFIG_SERVICE_PORT", default_value_t = 7113)]
    config_service_port: u16,

    /// Port of the log service (TCP, JSON lines) on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_LOG_SERVICE_PORT", default_value_t = 7114)]
    log_service_port: u16,

    /// Port of the Altinn 2 broker service (DPO) on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_ALTINN_BROKER_PORT", default_value_t = 7120)]
    altinn_broker_port: u16,

    /// Largest file the Altinn 2 broker service accepts, in bytes.
    #[arg(long, env = "SIMULATORS_ALTINN_BROKER_MAX_FILE_SIZE", default_value_t = altinn_broker::DEFAULT_MAX_FILE_SIZE)]
    altinn_broker_max_file_size: u64,

    /// How many files the Altinn 2 broker service holds undelivered at once.
    #[arg(long, env = "SIMULATORS_ALTINN_BROKER_MAX_UNDELIVERED_FILES", default_value_t = altinn_broker::DEFAULT_MAX_UNDELIVERED_FILES)]
    altinn_broker_max_undelivered_files: usize,

    /// Port of the Altinn 2 correspondence agency (DPV) on 127.0.0.1.
    #[arg(
        long,
        env = "SIMULATORS_ALTINN_CORRESPONDENCE_PORT",
        default_value_t = 7121
    )]
    altinn_correspondence_port: u16,

    /// Largest message the Altinn 2 correspondence agency accepts, in bytes.
    #[arg(long, env = "SIMULATORS_ALTINN_CORRESPONDENCE_MAX_MESSAGE_SIZE", default_value_t = altinn_correspondence::DEFAULT_MAX_MESSAGE_SIZE)]
    altinn_correspondence_max_message_size: usize,

    /// How many correspondences the Altinn 2 correspondence agency keeps.
    #[arg(long, env = "SIMULATORS_ALTINN_CORRESPONDENCE_MAX_CORRESPONDENCES", default_value_t = altinn_correspondence::DEFAULT_MAX_CORRESPONDENCES)]
    altinn_correspondence_max_correspondences: usize,

    /// Port of the ServiceRegistry on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_REGISTRY_PORT", default_value_t = 7110)]
    registry_port: u16,

    /// Port of ELMA (the PEPPOL SMP) on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_ELMA_PORT", default_value_t = 7115)]
    elma_port: u16,

    /// Port of KRR on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_KRR_PORT", default_value_t = 7116)]
    krr_port: u16,

    /// Port of Virksert on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_VIRKSERT_PORT", default_value_t = 7117)]
    virksert_port: u16,

    /// Port of Brreg (and the population register's person lookup) on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_BRREG_PORT", default_value_t = 7118)]
    brreg_port: u16,

    /// Port of the FIKS address service on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_FIKS_ADDRESS_PORT", default_value_t = 7119)]
    fiks_address_port: u16,

    /// Port of DPE's Service Bus on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_SERVICE_BUS_PORT", default_value_t = 7124)]
    service_bus_port: u16,

    /// How long a Service Bus peek-lock hides a message, in seconds.
    #[arg(
        long,
        env = "SIMULATORS_SERVICE_BUS_LOCK_SECONDS",
        default_value_t = 30
    )]
    service_bus_lock_seconds: u64,

    /// Largest Service Bus message body accepted, in bytes.
    #[arg(long, env = "SIMULATORS_SERVICE_BUS_MAX_MESSAGE_SIZE", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    service_bus_max_message_size: usize,

    /// Port of SvarUt (`/tjenester/forsendelseservice/...`) and SvarInn (`/tjenester/svarinn`)
    /// on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_SVARUT_PORT", default_value_t = 7122)]
    svarut_port: u16,

    /// Port of the DPI meldingsformidler (corner 2, under `/api`) and KRR's print certificate
    /// on 127.0.0.1.
    #[arg(long, env = "SIMULATORS_DPI_PORT", default_value_t = 7123)]
    dpi_port: u16,

    /// The fixture of organisations and citizens the registers know; Virksert issues a
    /// business certificate and keystore to each organisation in it.
    #[arg(
        long,
        env = "SIMULATORS_FIXTURE",
        default_value = "simulators/fixture.toml"
    )]
    fixture: PathBuf,

    /// Directory for received data; a temporary one, removed at exit, when not given.
    #[arg(long, env = "SIMULATORS_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Where the test PKI is written: the CA, and per organisation `<orgnr>.p12`,
    /// `<orgnr>.pem` and `<orgnr>-key.pem`, issued afresh at each start.
    #[arg(long, env = "SIMULATORS_PKI_DIR", default_value = "target/local/pki")]
    pki_dir: PathBuf,

    /// Where the CA and the key pairs are kept between starts (key generation is most of
    /// start-up); by default `<pki-dir>-keys` next to the PKI directory, so removing that
    /// directory keeps them.
    #[arg(long, env = "SIMULATORS_KEY_CACHE_DIR")]
    key_cache_dir: Option<PathBuf>,

    /// The password of the PKCS#12 keystores written to the PKI directory.
    #[arg(long, env = "SIMULATORS_KEYSTORE_PASSWORD", hide_env_values = true)]
    keystore_password: String,

    /// Organisations outside the fixture that get a business certificate, `orgnr=name`. The
    /// fixture's own get theirs from Virksert, which must be the only issuer of those:
    /// issuing twice would leave a keystore whose serial `/virksert` does not answer.
    #[arg(long, value_delimiter = ',')]
    organisations: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let args = Args::parse();
    let started = Instant::now();

    let fixture = Fixture::load(&args.fixture)?;
    // Every key is made on other threads while the CA is made here, unless kept.
    let key_owners: Vec<String> = fixture
        .organisations
        .iter()
        .map(|organisation| organisation.orgnr.clone())
        .chain(args.organisations.iter().map(|organisation| {
            organisation
                .split_once('=')
                .map_or(organisation.as_str(), |(number, _)| number)
                .to_owned()
        }))
        .chain(
            [
                REGISTRY_ORGNR,
                SVARUT_ORGNR,
                MELDINGSFORMIDLER_ORGNR,
                MASKINPORTEN_KEY,
                ALTINN_EXCHANGE_KEY,
            ]
            .map(str::to_owned),
        )
        .collect();
    let key_cache = args.key_cache_dir.clone().unwrap_or_else(|| {
        let mut name = args.pki_dir.file_name().unwrap_or_default().to_owned();
        name.push("-keys");
        args.pki_dir.with_file_name(name)
    });
    let keys = tokio::task::spawn_blocking({
        let key_cache = key_cache.clone();
        move || TestPki::prepare_keys(&key_cache, &key_owners)
    });
    let pki = TestPki::open(&args.pki_dir, &key_cache).context("creating the test PKI")?;
    keys.await.context("making keys")?.context("making keys")?;

    let mut maskinporten_config = MaskinportenConfig::new(
        pki.ca().clone(),
        args.maskinporten_audience,
        args.maskinporten_scopes,
    );
    maskinporten_config.port = args.maskinporten_port;
    maskinporten_config.signing_key = Some(pki.key(MASKINPORTEN_KEY)?);
    let maskinporten = Maskinporten::start(maskinporten_config)
        .await
        .with_context(|| {
            format!(
                "cannot start Maskinporten on port {}",
                args.maskinporten_port
            )
        })?;
    issue_extra_certificates(&pki, &args.organisations, &args.keystore_password)?;
    let mut exchange_config = AltinnExchangeConfig::new(maskinporten.verifier());
    exchange_config.port = args.altinn_exchange_port;
    exchange_config.signing_key = Some(pki.key(ALTINN_EXCHANGE_KEY)?);
    let altinn_exchange = AltinnExchange::start(exchange_config)
        .await
        .with_context(|| {
            format!(
                "cannot start the Altinn token exchange on port {}",
                args.altinn_exchange_port
            )
        })?;
    let registers_config = RegistersConfig {
        ports: RegisterPorts {
            elma: args.elma_port,
            krr: args.krr_port,
            virksert: args.virksert_port,
            brreg: args.brreg_port,
            fiks_address: args.fiks_address_port,
        },
        fixture: fixture.clone(),
        verifier: Arc::new(maskinporten.verifier()),
        keystore_password: args.keystore_password.clone(),
    };
    let registers = Registers::start(registers_config, &pki)
        .await
        .context("starting the registers")?;

    let formidler = pki
        .issue_meldingsformidler(&args.keystore_password)
        .context("issuing the meldingsformidler's certificate")?;
    let svarut_identity = pki
        .issue_svarut(&args.keystore_password)
        .context("issuing SvarUt's certificate")?;

    let loopback = LoopbackPeer::start(LoopbackPeerConfig {
        port: args.loopback_port,
        username: args.loopback_username,
        password: args.loopback_password,
        max_package_size: args.loopback_max_package_size,
        data_dir: args.data_dir.as_ref().map(|dir| dir.join("loopback-peer")),
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the loopback peer on port {}",
            args.loopback_port
        )
    })?;
    // The local environment asks for nothing yet; an empty answer is a valid one.
    let config_service = ConfigService::start(ConfigServiceConfig {
        port: args.config_service_port,
        environments: vec![("integrasjonspunkt".into(), "local".into(), Vec::new())],
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the configuration service on port {}",
            args.config_service_port
        )
    })?;
    let log_sink = LogSink::start(LogSinkConfig {
        port: args.log_service_port,
        ..LogSinkConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the log service on port {}",
            args.log_service_port
        )
    })?;
    let mut service_bus_config = ServiceBusConfig::new(fixture.service_bus.clone());
    service_bus_config.port = args.service_bus_port;
    service_bus_config.lock_duration = Duration::from_secs(args.service_bus_lock_seconds);
    service_bus_config.max_message_size = args.service_bus_max_message_size;
    let service_bus = ServiceBus::start(service_bus_config)
        .await
        .with_context(|| {
            format!(
                "cannot start the Service Bus on port {}",
                args.service_bus_port
            )
        })?;

    let mut broker_config = AltinnBrokerConfig::new(fixture.clone());
    broker_config.port = args.altinn_broker_port;
    broker_config.max_file_size = args.altinn_broker_max_file_size;
    broker_config.max_undelivered_files = args.altinn_broker_max_undelivered_files;
    broker_config.data_dir = args.data_dir.as_ref().map(|dir| dir.join("altinn-broker"));
    let altinn_broker = AltinnBroker::start(broker_config).await.with_context(|| {
        format!(
            "cannot start the Altinn broker service on port {}",
            args.altinn_broker_port
        )
    })?;
    let mut correspondence_config = AltinnCorrespondenceConfig::new(fixture.clone());
    correspondence_config.port = args.altinn_correspondence_port;
    correspondence_config.max_message_size = args.altinn_correspondence_max_message_size;
    correspondence_config.max_correspondences = args.altinn_correspondence_max_correspondences;
    let altinn_correspondence = AltinnCorrespondence::start(correspondence_config)
        .await
        .with_context(|| {
            format!(
                "cannot start the Altinn correspondence agency on port {}",
                args.altinn_correspondence_port
            )
        })?;

    // The registry hands DPE the key the Service Bus checks signatures with, and DPF records
    // carry SvarUt's certificate, which SvarUt decrypts with.
    let mut registry_config = RegistryConfig::new(
        fixture.clone(),
        Arc::new(maskinporten.verifier()),
        args.keystore_password,
        fixture.service_bus.key.clone(),
    );
    registry_config.port = args.registry_port;
    registry_config.sources = Some(registers.urls());
    registry_config.svarut_certificate = Some(svarut_identity.certificate.clone());
    let registry = ServiceRegistry::start(registry_config, &pki)
        .await
        .with_context(|| {
            format!(
                "cannot start the service registry on port {}",
                args.registry_port
            )
        })?;

    // Virksert issued the mailbox and print providers' certificates and SvarInn's receivers',
    // so these two start after the registers.
    let providers = providers_from_fixture(&fixture, &pki)
        .context("reading the mailbox and print providers' keys")?;
    let dpi = Meldingsformidler::start(MeldingsformidlerConfig {
        port: args.dpi_port,
        maskinporten: maskinporten.verifier(),
        ca: pki.ca().clone(),
        receipt_certificate: formidler.certificate,
        receipt_key: formidler.key,
        providers,
        print_provider: fixture.print_provider.clone(),
        max_package_size: simulators::dpi::DEFAULT_MAX_PACKAGE_SIZE,
        data_dir: args.data_dir.as_ref().map(|dir| dir.join("dpi")),
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the DPI meldingsformidler on port {}",
            args.dpi_port
        )
    })?;

    let svarut = SvarUt::start(SvarUtConfig {
        port: args.svarut_port,
        certificate: svarut_identity.certificate,
        key: svarut_identity.key,
        accounts: svarut::accounts_from_fixture(&fixture, |orgnr| {
            registers.certificate(orgnr).cloned()
        }),
        max_document_size: svarut::DEFAULT_MAX_DOCUMENT_SIZE,
        data_dir: args.data_dir.as_ref().map(|dir| dir.join("svarut")),
    })
    .await
    .with_context(|| format!("cannot start SvarUt on port {}", args.svarut_port))?;

    let urls = registers.urls();
    let services = [
        ("loopback peer", loopback.base_url()),
        ("Maskinporten", maskinporten.token_url()),
        ("Altinn token exchange", altinn_exchange.exchange_url()),
        ("configuration service", config_service.base_url()),
        ("ServiceRegistry", registry.base_url()),
        ("ELMA", urls.elma),
        ("KRR", urls.krr),
        ("Virksert", urls.virksert),
        ("Brreg", urls.brreg),
        ("FIKS address service", urls.fiks_address),
        ("DPE Service Bus", service_bus.base_url()),
        ("SvarUt", svarut.forsendelse_service_url()),
        ("SvarInn", svarut.svarinn_url()),
        ("DPI meldingsformidler", dpi.api_url()),
        ("KRR print certificate", dpi.print_certificate_url()),
        ("Altinn broker (basic)", altinn_broker.basic_url()),
        ("Altinn broker (streamed)", altinn_broker.streamed_url()),
        ("Altinn correspondence", altinn_correspondence.service_url()),
        ("log service (TCP)", log_sink.destination()),
    ];
    println!("{:<24} URL", "service");
    for (name, url) in &services {
        println!("{name:<24} {url}");
    }
    println!("started in {} ms", started.elapsed().as_millis());

    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("stopping");
    loopback.shutdown().await;
    maskinporten.shutdown().await;
    altinn_exchange.shutdown().await;
    config_service.shutdown().await;
    log_sink.shutdown().await;
    registry.shutdown().await;
    registers.shutdown().await;
    service_bus.shutdown().await;
    dpi.shutdown().await;
    svarut.shutdown().await;
    altinn_broker.shutdown().await;
    altinn_correspondence.shutdown().await;
    Ok(())
}

/// Issues a business certificate to each of `organisations` (`orgnr=name`).
fn issue_extra_certificates(
    pki: &TestPki,
    organisations: &[String],
    password: &str,
) -> anyhow::Result<()> {
    for organisation in organisations {
        let (number, name) = organisation
            .split_once('=')
            .unwrap_or((organisation, organisation));
        let issued = pki
            .issue(number, name, -1, 365, password)
            .with_context(|| format!("issuing a business certificate for {number}"))?;
        tracing::info!(keystore = %issued.keystore.display(), "business certificate issued");
    }
    Ok(())
}
