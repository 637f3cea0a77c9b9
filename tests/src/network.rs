//! A small eFormidling network for end-to-end tests: Maskinporten, the ServiceRegistry and the
//! loopback peer from the simulators, and integration points of fixture organisations started
//! in-process from configuration files, exactly as the binary starts them.
//!
//! Each integration point runs the loopback channel configured to stand in for DPO (its setting
//! `service = "DPO"`), so the registry's real routing picks it: swapping a channel is a matter of
//! configuration, which is what these tests lean on.

use std::io::{Cursor, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use integrasjonspunkt::config::{Config, LoadOptions};
use integrasjonspunkt::plugins::Compiler;
use integrasjonspunkt::service::RunningService;
use serde_json::{Value, json};
use simulators::fixture::Fixture;
use simulators::loopback_peer::{LoopbackPeer, LoopbackPeerConfig};
use simulators::maskinporten::{Maskinporten, MaskinportenConfig};
use simulators::pki::TestPki;
use simulators::registry::{RegistryConfig, ServiceRegistry};

/// The password of the keystores the registry simulator writes for the fixture.
pub const KEYSTORE_PASSWORD: &str = "network keystore";
/// The API user of every integration point here.
pub const API_USER: &str = "archive";
/// Its password.
pub const API_PASSWORD: &str = "archive password";
/// The loopback peer's Basic username.
pub const PEER_USER: &str = "agency";
/// Its password.
pub const PEER_PASSWORD: &str = "peer password";

/// The arkivmelding process every fixture organisation is registered for.
pub const PROCESS: &str = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0";
/// The arkivmelding document type.
pub const ARKIVMELDING: &str = "urn:no:difi:arkivmelding:xsd::arkivmelding";

/// The simulators every integration point shares.
pub struct Network {
    /// Where the PKI and the integration points' files live.
    pub dir: tempfile::TempDir,
    /// The token service.
    pub maskinporten: Maskinporten,
    /// The ServiceRegistry.
    pub registry: ServiceRegistry,
    /// The provider of the loopback channel.
    pub peer: LoopbackPeer,
    /// The test PKI every certificate here chains to, for simulators a test starts itself.
    pub pki: TestPki,
    pki_dir: PathBuf,
}

impl Network {
    /// Starts the simulators; the registry issues every fixture organisation a keystore.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`Network::start`], with the loopback peer's configuration adjusted by `peer` (its
    /// credentials are the network's own), e.g. a small `max_package_size`.
    pub async fn start_with(peer: impl FnOnce(&mut LoopbackPeerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki_dir = dir.path().join("pki");
        let pki = TestPki::new(&pki_dir).expect("a test CA");
        let maskinporten = Maskinporten::start(MaskinportenConfig::new(
            pki.ca().clone(),
            "http://127.0.0.1/maskinporten/",
            [
                "eformidling:dpo",
                "eformidling:dpv",
                "eformidling:dpf",
                "eformidling:dpe",
                "eformidling:dpi",
                "digitalpostinnbygger:send",
                "global/kontaktinformasjon.read",
                "global/sikkerdigitalpost.read",
                "global/varslingsstatus.read",
                "global/sertifikat.read",
                "global/navn.read",
                "global/postadresse.read",
            ],
        ))
        .await
        .expect("the Maskinporten simulator");
        let fixture = Fixture::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulators/fixture.toml"),
        )
        .expect("the fixture");
        let registry = ServiceRegistry::start(
            RegistryConfig::new(
                fixture,
                Arc::new(maskinporten.verifier()),
                KEYSTORE_PASSWORD,
                "sas key",
            ),
            &pki,
        )
        .await
        .expect("the registry simulator");
        let mut peer_config = LoopbackPeerConfig::new(PEER_USER, PEER_PASSWORD);
        peer(&mut peer_config);
        let peer = LoopbackPeer::start(peer_config)
            .await
            .expect("the loopback peer");
        Self {
            dir,
            maskinporten,
            registry,
            peer,
            pki,
            pki_dir,
        }
    }

    /// The configuration directory of organisation `orgnr`'s integration point: an environment
    /// file `e2e.toml` and an operator file, with `operator_extra` appended to the latter.
    pub fn configure(&self, orgnr: &str, operator_extra: &str) -> PathBuf {
        self.configure_channel(orgnr, operator_extra, "")
    }

    /// As [`Network::configure`], with `plugin_settings` (inline-table entries, each starting
    /// with a comma) added to the loopback plugin's settings.
    pub fn configure_channel(
        &self,
        orgnr: &str,
        operator_extra: &str,
        plugin_settings: &str,
    ) -> PathBuf {
        self.configure_instance(
            orgnr,
            "",
            "sqlite://data/integrasjonspunkt.db",
            operator_extra,
            plugin_settings,
        )
    }

    /// The configuration of instance `instance` of organisation `orgnr`'s integration point,
    /// on the database at `database` (several instances may share a PostgreSQL one).
    pub fn configure_instance(
        &self,
        orgnr: &str,
        instance: &str,
        database: &str,
        operator_extra: &str,
        plugin_settings: &str,
    ) -> PathBuf {
        let home = self.dir.path().join(format!("ip-{orgnr}{instance}"));
        let peer = self.peer.base_url();
        let channel_tables = format!(
            r#"[endpoints.channels.loopback]
endpoint = "{peer}"

[plugins.loopback]
file = "{plugin}"
allowed-hosts = ["{peer}"]
secrets = ["peer"]
limits = {{ memory-mib = 64, timeout-seconds = 120, concurrency = 8 }}
settings = {{ identifier = "0192:{orgnr}", credentials = "peer", service = "DPO"{plugin_settings} }}
"#,
            plugin = ip_tests_loopback(),
        );
        let operator_tables = format!(
            r#"[secrets.peer]
username = "{PEER_USER}"
password = {{ file = "peer-password" }}
{operator_extra}"#
        );
        self.write_configuration(
            &home,
            orgnr,
            database,
            "\"loopback\"",
            &channel_tables,
            &operator_tables,
        );
        std::fs::write(home.join("peer-password"), PEER_PASSWORD).expect("a password");
        home
    }

    /// Writes the configuration of organisation `orgnr`'s integration point into `home`: the
    /// environment file `config/e2e.toml` (this network's endpoints, then `channel_tables`, the
    /// channels' `[endpoints.channels.…]` and `[plugins.…]`), and the operator file on
    /// `database` with `enabled` (the quoted channel names) and `operator_tables` (their
    /// secrets and whatever else) after the settings every test shares.
    pub fn write_configuration(
        &self,
        home: &Path,
        orgnr: &str,
        database: &str,
        enabled: &str,
        channel_tables: &str,
        operator_tables: &str,
    ) {
        let config_dir = home.join("config");
        std::fs::create_dir_all(&config_dir).expect("a configuration directory");
        let environment = format!(
            r#"[environment]
name = "e2e"

[endpoints]
service-registry = "{registry}"
maskinporten = "{token}"
maskinporten-audience = "http://127.0.0.1/maskinporten/"
altinn-token-exchange = "http://127.0.0.1:9/exchange"
log-service = "127.0.0.1:9"

{channel_tables}"#,
            registry = self.registry.base_url(),
            token = self.maskinporten.token_url(),
        );
        std::fs::write(config_dir.join("e2e.toml"), environment).expect("the environment file");
        std::fs::write(home.join("keystore-password"), KEYSTORE_PASSWORD).expect("a password");
        let hash = integrasjonspunkt::api::hash_password(API_PASSWORD).expect("a password hash");
        let operator = format!(
            r#"[organisation]
number = "{orgnr}"

[keystore]
path = "{keystore}"
password = {{ file = "keystore-password" }}

[api]
listen = "127.0.0.1:0"

[api.users.{API_USER}]
password-hash = "{hash}"

[database]
url = "{database}"

[channels]
enabled = [{enabled}]

{TEST_POLLING}
[retry]
initial-seconds = 1
max-interval-seconds = 2

{operator_tables}"#,
            keystore = self.pki_dir.join(format!("{orgnr}.p12")).display(),
        );
        std::fs::write(home.join("integrasjonspunkt.toml"), operator).expect("the operator file");
    }

    /// Starts organisation `orgnr`'s integration point.
    pub async fn integration_point(&self, orgnr: &str) -> IntegrationPoint {
        let home = self.configure(orgnr, "");
        IntegrationPoint::start(&home).await
    }
}

/// How often the test network's integration points poll, statuses and incoming messages alike:
/// every second, so that tests see a status or a message at once (an operator's default is a
/// minute and 20 s). The operator file holds it as written here.
pub const TEST_POLLING: &str = "[polling]\nstatuses-seconds = 1\nincoming-seconds = 1\n";

fn ip_tests_loopback() -> &'static str {
    crate::artifacts::LOOPBACK
}

/// The load options of the configuration `home` holds.
pub fn load_options(home: &Path) -> LoadOptions {
    LoadOptions {
        profile: "e2e".into(),
        config_dir: home.join("config"),
        operator_file: Some(home.join("integrasjonspunkt.toml")),
        variables: Vec::new(),
    }
}

/// An integration point started in-process, with an HTTP client for its API.
pub struct IntegrationPoint {
    /// Its directory: configuration, keystore password, `data/`.
    pub home: PathBuf,
    /// The running service.
    pub service: RunningService,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    client: reqwest::Client,
}

impl IntegrationPoint {
    /// Starts the integration point configured in `home`. It compiles plugins in process: the
    /// test, not the `integrasjonspunkt` binary, is the executable here.
    pub async fn start(home: &Path) -> Self {
        Self::try_start(home)
            .await
            .expect("the integration point starts")
    }

    /// Starts the integration point configured in `home`, or tells why it did not start.
    pub async fn try_start(home: &Path) -> anyhow::Result<Self> {
        let options = load_options(home);
        let config = Config::load(&options).await.expect("a valid configuration");
        let service =
            integrasjonspunkt::service::start(config, options, Compiler::InProcess).await?;
        let url = format!("http://{}", service.address());
        Ok(Self {
            home: home.to_path_buf(),
            service,
            url,
            client: reqwest::Client::new(),
        })
    }

    /// A request to `path` with the API user's credentials.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .basic_auth(API_USER, Some(API_PASSWORD))
    }

    /// POST `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("an answer")
    }

    /// GET `path`, its status and JSON body (null when empty).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("an answer");
        let status = answer.status().as_u16();
        let body = answer.bytes().await.expect("a body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Peeks until a message is waiting, up to `patience`; its SBD.
    pub async fn wait_for_incoming(&self, patience: Duration) -> Value {
        let mut peeked = Value::Null;
        wait_until("a message to arrive", patience, async || {
            let (status, body) = self.get("/api/messages/in/peek").await;
            assert!(
                status == 200 || status == 204,
                "peek answered {status}: {body}"
            );
            peeked = body;
            status == 200
        })
        .await;
        peeked
    }

    /// Pops the peeked message `message_id`; its content type and the ASiC-E as a zip.
    pub async fn pop(&self, message_id: &str) -> (String, zip::ZipArchive<Cursor<Vec<u8>>>) {
        let popped = self
            .request(
                reqwest::Method::GET,
                &format!("/api/messages/in/pop/{message_id}"),
            )
            .send()
            .await
            .expect("an answer");
        assert_eq!(popped.status(), 200);
        let content_type = popped.headers()["content-type"]
            .to_str()
            .expect("a content type")
            .to_owned();
        let package = popped.bytes().await.expect("the package").to_vec();
        let archive = zip::ZipArchive::new(Cursor::new(package)).expect("a zip");
        (content_type, archive)
    }

    /// Deletes the popped message `message_id` and checks that nothing else waits: the archive
    /// system sees each message once.
    pub async fn delete_incoming(&self, message_id: &str) {
        let deleted = self
            .request(
                reqwest::Method::DELETE,
                &format!("/api/messages/in/{message_id}"),
            )
            .send()
            .await
            .expect("an answer");
        assert_eq!(deleted.status(), 200);
        let (status, _) = self.get("/api/messages/in/peek").await;
        assert_eq!(status, 204, "the receiver sees the message once");
    }

    /// Creates the message `sbd` describes and uploads `arkivmelding.xml` naming `vedtak.pdf`
    /// and `vedtak.pdf` of `document`; fails the test on any refusal.
    pub async fn create_with_documents(&self, sbd: &Value, document: Vec<u8>) {
        let message_id = message_id(sbd);
        let created = self.post_json("/api/messages/out", sbd).await;
        assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
        let uploads = [
            (
                "arkivmelding.xml",
                "application/xml",
                arkivmelding_xml("Vedtak", &["vedtak.pdf"]).into_bytes(),
            ),
            ("vedtak.pdf", "application/pdf", document),
        ];
        for (name, mime, bytes) in uploads {
            let uploaded = self
                .request(
                    reqwest::Method::PUT,
                    &format!("/api/messages/out/{message_id}"),
                )
                .header("content-type", mime)
                .header(
                    "content-disposition",
                    format!("attachment; name=\"{name}\"; filename=\"{name}\""),
                )
                .body(bytes)
                .send()
                .await
                .expect("an answer");
            assert_eq!(uploaded.status(), 200, "{}", uploaded.text().await.unwrap());
        }
    }

    /// Hands message `message_id` to the outbox; fails the test on a refusal.
    pub async fn send(&self, message_id: &str) {
        let sent = self
            .request(
                reqwest::Method::POST,
                &format!("/api/messages/out/{message_id}"),
            )
            .send()
            .await
            .expect("an answer");
        assert_eq!(sent.status(), 200, "{}", sent.text().await.unwrap());
    }

    /// Creates, fills and sends an arkivmelding from `sender` to `receiver`; its message id.
    pub async fn send_arkivmelding(&self, sender: &str, receiver: &str) -> String {
        let sbd = arkivmelding_sbd(sender, receiver, "vedtak.pdf");
        self.create_with_documents(&sbd, b"%PDF-1.7 vedtak".to_vec())
            .await;
        let message_id = message_id(&sbd);
        self.send(&message_id).await;
        message_id
    }

    /// How many message files the integration point holds: files of the blob store, and small
    /// files kept in their database rows.
    pub async fn stored_files(&self) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| {
                            let path = entry.path();
                            if path.is_dir() { count(&path) } else { 1 }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        use sqlx::Row as _;
        let pool = database(&sqlite_database(&self.home)).await;
        let inline: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM message_file WHERE data IS NOT NULL")
                .fetch_one(&pool)
                .await
                .expect("the message files")
                .get("n");
        pool.close().await;
        count(&self.home.join("data/blobs")) + usize::try_from(inline).expect("a count")
    }

    /// The statuses of outgoing message `message_id`, in order.
    pub async fn outgoing_statuses(&self, message_id: &str) -> Vec<String> {
        let (status, conversation) = self
            .get(&format!("/api/conversations/messageId/{message_id}"))
            .await;
        if status != 200 {
            return Vec::new();
        }
        statuses(&conversation)
    }

    /// Waits until outgoing message `message_id` has `status`, up to `patience`.
    pub async fn wait_for_status(
        &self,
        message_id: &str,
        status: &str,
        patience: Duration,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let seen = self.outgoing_statuses(message_id).await;
            if seen.iter().any(|s| s == status) || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Entry `name` of a popped package.
pub fn zip_entry(archive: &mut zip::ZipArchive<Cursor<Vec<u8>>>, name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    archive
        .by_name(name)
        .expect("the entry")
        .read_to_end(&mut bytes)
        .expect("the entry's bytes");
    bytes
}

/// The message id (`instanceIdentifier`) of an SBD.
pub fn message_id(sbd: &Value) -> String {
    sbd["standardBusinessDocumentHeader"]["documentIdentification"]["instanceIdentifier"]
        .as_str()
        .expect("an SBD with a message id")
        .to_owned()
}

/// Waits until `done` says so, up to `patience`; fails naming `what` when it does not.
pub async fn wait_until(what: &str, patience: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + patience;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the integration point at `url` answers `/manage/health` with success, up to
/// `patience`.
pub async fn wait_healthy(client: &reqwest::Client, url: &str, patience: Duration) {
    wait_until(&format!("{url} to be healthy"), patience, async || {
        client
            .get(format!("{url}/manage/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

/// A `multipart/form-data` body for `POST /api/messages/out/multipart`: the SBD, an
/// arkivmelding.xml naming `a.pdf`, and `a.pdf` of `document`; with its content type.
pub fn multipart_message(sbd: &Value, document: &[u8]) -> (String, Vec<u8>) {
    let boundary = "ip-tests-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"sbd\"\r\nContent-Type: application/json\r\n\r\n{sbd}\r\n").as_bytes());
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Arkivmelding\"; filename=\"arkivmelding.xml\"\r\nContent-Type: application/xml\r\n\r\n{}\r\n", arkivmelding_xml("Melding", &["a.pdf"])).as_bytes());
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"Dokument\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes());
    body.extend_from_slice(document);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A connection to the SQLite database of the integration point in `home`.
/// The database at `url`.
async fn database(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url).await.expect("the database")
}

/// The URL of the SQLite database of the integration point in `home`.
fn sqlite_database(home: &Path) -> String {
    format!(
        "sqlite://{}",
        home.join("data/integrasjonspunkt.db").display()
    )
}

/// The attempts on `message_id`'s outbox row in the SQLite database of the integration point
/// in `home`; none when it has no row.
pub async fn outbox_attempts(home: &Path, message_id: &str) -> Option<i64> {
    outbox_column(&sqlite_database(home), message_id, "attempts").await
}

/// Who holds the lease on `message_id`'s outbox row in the database at `url` (on SQLite the
/// worker keeps its claims in memory, and no row has one): `None` when it has no row,
/// `Some(None)` when the row is unclaimed.
pub async fn outbox_claimant(url: &str, message_id: &str) -> Option<Option<String>> {
    outbox_column(url, message_id, "claimed_by").await
}

/// `column` of `message_id`'s outbox row in the database at `url`; none when it has no row.
async fn outbox_column<T>(url: &str, message_id: &str, column: &str) -> Option<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row as _;
    let pool = database(url).await;
    let value = sqlx::query(&format!(
        "SELECT {column} FROM outbox WHERE message_id = $1"
    ))
    .bind(message_id)
    .fetch_optional(&pool)
    .await
    .expect("the outbox")
    .map(|row| row.get::<T, _>(column));
    pool.close().await;
    value
}

/// The `status` of each of a conversation's `messageStatuses`.
pub fn statuses(conversation: &Value) -> Vec<String> {
    conversation["messageStatuses"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| s["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An arkivmelding SBD from `sender` to `receiver` (organisation numbers) with a fresh message
/// and conversation id, naming `primary` as the main document.
pub fn arkivmelding_sbd(sender: &str, receiver: &str, primary: &str) -> Value {
    json!({
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"value": format!("0192:{sender}"), "authority": "iso6523-actorid-upis"}}],
            "receiver": [{"identifier": {"value": format!("0192:{receiver}"), "authority": "iso6523-actorid-upis"}}],
            "documentIdentification": {
                "standard": ARKIVMELDING,
                "typeVersion": "2.0",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "type": "arkivmelding"
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "instanceIdentifier": uuid::Uuid::new_v4().to_string(),
                "identifier": PROCESS
            }]}
        },
        "arkivmelding": {"hoveddokument": primary, "sikkerhetsnivaa": 3}
    })
}

/// An `arkivmelding.xml` whose journalpost refers to `files`.
pub fn arkivmelding_xml(title: &str, files: &[&str]) -> String {
    let documents: String = files
        .iter()
        .map(|file| {
            format!(
                "<dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>{file}</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>"
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<mappe xsi:type="saksmappe"><systemID>0f7d5f0e-5c5b-4d8f-a0b0-6f3f3c1d9a11</systemID>
<registrering xsi:type="journalpost"><journalpostnummer>7</journalpostnummer><offentligTittel>{title}</offentligTittel>{documents}</registrering>
</mappe></arkivmelding>"#
    )
}
