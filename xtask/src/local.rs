//! `cargo xtask local`: the local system an archive-system developer runs on their own machine,
//! with no internet: the simulators of every external service, and two integration points of
//! two organisations (910075918 sends, 910076787 receives) on the local environment.
//!
//! Each integration point gets an operator file of its own under `target/local/ip-<orgnr>/`
//! (organisation, keystore, port, API user, data), layered over `config/local.toml`, exactly as
//! an agency layers its file over the environment it runs in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{build_plugins, cargo, check};

/// The API user of both local integration points, and its password.
pub const USER: &str = "local";
/// The password; printed, as this is a local test system.
pub const PASSWORD: &str = "local-password";
/// The simulators' loopback peer password and the keystores' password.
const LOOPBACK_PASSWORD: &str = "local-loopback-password";
const KEYSTORE_PASSWORD: &str = "local-keystore-password";

/// The two organisations and the ports of their APIs.
pub const INTEGRATION_POINTS: [(&str, &str, u16); 2] = [
    ("910075918", "Lokal testetat", 9093),
    ("910076787", "Lokal mottakeretat", 9094),
];

/// What the simulators' fixture (`simulators/fixture.toml`) gives one local organisation: the
/// accounts its channels log in with, read from the fixture so the two never disagree.
struct Accounts {
    /// The Altinn 2 end-user system (DPO and DPV act as it): user name and password.
    altinn_user: String,
    altinn_password: String,
    /// Its SvarUt account's password (DPF), if it has one.
    svarut_password: Option<String>,
    /// The Service Bus shared access key (DPE), the same for every organisation.
    service_bus_key: String,
}

impl Accounts {
    /// `orgnr`'s accounts in the fixture at `root`.
    fn of(root: &Path, orgnr: &str) -> anyhow::Result<Self> {
        let path = root.join("simulators/fixture.toml");
        let fixture: toml::Table = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        let text = |value: Option<&toml::Value>, what: &str| -> anyhow::Result<String> {
            value
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("{}: {orgnr} has no {what}", path.display()))
        };
        let organisation = fixture
            .get("organisations")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .find(|o| o.get("orgnr").and_then(toml::Value::as_str) == Some(orgnr))
            .with_context(|| format!("{}: no organisation {orgnr}", path.display()))?;
        let altinn2 = organisation.get("altinn2");
        Ok(Self {
            altinn_user: text(
                altinn2.and_then(|a| a.get("system-user-name")),
                "altinn2.system-user-name",
            )?,
            altinn_password: text(
                altinn2.and_then(|a| a.get("system-password")),
                "altinn2.system-password",
            )?,
            svarut_password: organisation
                .get("svarut-account")
                .and_then(|a| a.get("password"))
                .and_then(toml::Value::as_str)
                .map(str::to_owned),
            service_bus_key: text(
                fixture.get("service-bus").and_then(|b| b.get("key")),
                "service-bus.key",
            )?,
        })
    }
}

fn operator_file(orgnr: &str, name: &str, port: u16, hash: &str, accounts: &Accounts) -> String {
    let altinn_user = &accounts.altinn_user;
    // DPF needs the organisation's own SvarUt account.
    let channels = if accounts.svarut_password.is_some() {
        r#""dpo", "dpv", "dpe", "dpf", "dpi""#
    } else {
        r#""dpo", "dpv", "dpe", "dpi""#
    };
    // The first reads its `innsyn` queue as an agency does; the second stands in for eInnsyn,
    // which reads its `data` queue (where the first's receipts go).
    let dpe_mode = if orgnr == INTEGRATION_POINTS[0].0 {
        "innsyn"
    } else {
        "data"
    };
    format!(
        r#"# Written by `cargo xtask local`: the operator settings of {name} ({orgnr}).
[organisation]
number = "{orgnr}"
name = "{name}"

[keystore]
path = "../pki/{orgnr}.p12"
alias = "{orgnr}"
password = {{ env = "IP_KEYSTORE_PASSWORD" }}

[data]
dir = "data"

[database]
url = "sqlite://data/integrasjonspunkt.db"

[api]
listen = "127.0.0.1:{port}"

[api.users.{USER}]
password-hash = "{hash}"

[polling]
statuses-seconds = 2
incoming-seconds = 2

[channels]
enabled = [{channels}]

[plugins.loopback.settings]
identifier = "0192:{orgnr}"

[plugins.dpo.settings]
reportee = "{orgnr}"

[plugins.dpe.settings]
identifier = "0192:{orgnr}"
mode = "{dpe_mode}"

[secrets.dpo]
username = "{altinn_user}"
password = {{ env = "IP_DPO_PASSWORD" }}

[secrets.dpv]
username = "{altinn_user}"
password = {{ env = "IP_DPV_PASSWORD" }}

# The organisation's own SvarUt account (DPF), as the fixture names it.
[secrets.svarut]
username = "{orgnr}"
password = {{ env = "IP_SVARUT_PASSWORD" }}

[secrets.svarinn]
username = "{orgnr}"
password = {{ env = "IP_SVARUT_PASSWORD" }}
"#
    )
}

/// Example files for the curl line: an SBD without ids (the integration point fills them in),
/// the arkivmelding and the document it names.
fn write_examples(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (sender, _, _) = INTEGRATION_POINTS[0];
    let (receiver, _, _) = INTEGRATION_POINTS[1];
    let sbd = serde_json::json!({
        "standardBusinessDocumentHeader": {
            "headerVersion": "1.0",
            "sender": [{"identifier": {"value": format!("0192:{sender}"), "authority": "iso6523-actorid-upis"}}],
            "receiver": [{"identifier": {"value": format!("0192:{receiver}"), "authority": "iso6523-actorid-upis"}}],
            "documentIdentification": {
                "standard": "urn:no:difi:arkivmelding:xsd::arkivmelding",
                "typeVersion": "2.0",
                "type": "arkivmelding"
            },
            "businessScope": {"scope": [{
                "type": "ConversationId",
                "identifier": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
            }]}
        },
        "arkivmelding": {"hoveddokument": "vedtak.pdf", "sikkerhetsnivaa": 3}
    });
    std::fs::write(dir.join("sbd.json"), serde_json::to_string_pretty(&sbd)?)?;
    std::fs::write(
        dir.join("arkivmelding.xml"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <mappe xsi:type="saksmappe">
    <systemID>9d3e5c1a-2b8f-4a6e-9c1d-7e5f3a2b1c0d</systemID>
    <registrering xsi:type="journalpost">
      <journalpostnummer>1</journalpostnummer>
      <offentligTittel>Vedtak i byggesak</offentligTittel>
      <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedtak.pdf</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>
    </registrering>
  </mappe>
</arkivmelding>
"#,
    )?;
    std::fs::write(
        dir.join("vedtak.pdf"),
        b"%PDF-1.4\n% a stand-in document for the local system\n%%EOF\n",
    )?;
    Ok(())
}

/// The curl line that sends the example message from the first integration point.
pub fn curl_line(examples: &Path) -> String {
    let port = INTEGRATION_POINTS[0].2;
    let file = |name: &str| examples.join(name).display().to_string();
    format!(
        "curl -u {USER}:{PASSWORD} http://127.0.0.1:{port}/api/messages/out/multipart \\\n  \
         -F 'sbd=@{};type=application/json' \\\n  \
         -F 'Arkivmelding=@{};type=application/xml' \\\n  \
         -F 'Vedtak=@{};type=application/pdf'",
        file("sbd.json"),
        file("arkivmelding.xml"),
        file("vedtak.pdf"),
    )
}

fn spawn(command: &mut Command) -> anyhow::Result<Child> {
    command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))
}

fn wait_for(what: &str, patience: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > patience {
            bail!("gave up waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether `GET path` on 127.0.0.1:`port` answers 200.
fn answers(port: u16, path: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).is_ok() && answer.starts_with("HTTP/1.1 200")
}

/// The Argon2 hash of `password`, made by the integration point itself.
fn hash(binary: &Path, password: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(binary)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("the hash command's input")?
        .write_all(format!("{password}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    check(output.status)?;
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Builds and runs the local system until Ctrl-C or until a process stops.
pub fn run(root: &Path) -> anyhow::Result<()> {
    build_plugins(root, &root.join("target/plugins"))?;
    check(
        cargo(root)
            .args(["build", "-p", "simulators", "-p", "integrasjonspunkt"])
            .status()?,
    )?;
    let local = root.join("target/local");
    let pki_dir = local.join("pki");
    // Certificates are issued afresh; the keys behind them are kept beside, so this is quick.
    let _ = std::fs::remove_dir_all(&pki_dir);
    let mut children: Vec<(String, Child)> = Vec::new();
    let simulators = spawn(
        Command::new(root.join("target/debug/simulators"))
            .current_dir(root)
            .arg("--pki-dir")
            .arg(&pki_dir)
            .env("SIMULATORS_LOOPBACK_PASSWORD", LOOPBACK_PASSWORD)
            .env("SIMULATORS_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD),
    )?;
    children.push(("simulators".into(), simulators));
    let outcome = (|| -> anyhow::Result<()> {
        for (orgnr, _, _) in INTEGRATION_POINTS {
            let keystore = pki_dir.join(format!("{orgnr}.p12"));
            wait_for("the simulators' keystores", Duration::from_secs(60), || {
                keystore.exists()
            })?;
        }
        wait_for("the ServiceRegistry", Duration::from_secs(60), || {
            answers(7110, "/jwk")
        })?;
        let binary = root.join("target/debug/integrasjonspunkt");
        let hash = hash(&binary, PASSWORD)?;
        for (orgnr, name, port) in INTEGRATION_POINTS {
            let home: PathBuf = local.join(format!("ip-{orgnr}"));
            std::fs::create_dir_all(&home)?;
            let operator = home.join("integrasjonspunkt.toml");
            let accounts = Accounts::of(root, orgnr)?;
            std::fs::write(
                &operator,
                operator_file(orgnr, name, port, &hash, &accounts),
            )?;
            let mut command = Command::new(&binary);
            if let Some(password) = &accounts.svarut_password {
                command.env("IP_SVARUT_PASSWORD", password);
            }
            let host = spawn(
                command
                    .current_dir(&home)
                    .args(["--profile", "local", "--config-dir"])
                    .arg(root.join("config"))
                    .arg("--config")
                    .arg(&operator)
                    .arg("run")
                    .env("IP_LOOPBACK_PASSWORD", LOOPBACK_PASSWORD)
                    .env("IP_KEYSTORE_PASSWORD", KEYSTORE_PASSWORD)
                    .env("IP_DPO_PASSWORD", &accounts.altinn_password)
                    .env("IP_DPV_PASSWORD", &accounts.altinn_password)
                    .env("IP_DPE_KEY", &accounts.service_bus_key),
            )?;
            children.push((format!("integrasjonspunkt {orgnr}"), host));
        }
        for (orgnr, _, port) in INTEGRATION_POINTS {
            wait_for(
                &format!("the integration point of {orgnr}"),
                Duration::from_secs(120),
                || answers(port, "/manage/health/readiness"),
            )?;
        }
        let examples = local.join("examples");
        write_examples(&examples)?;
        println!();
        println!("The local system is running (Ctrl-C stops it):");
        for (orgnr, name, port) in INTEGRATION_POINTS {
            println!(
                "  {name} ({orgnr}): http://127.0.0.1:{port}  user {USER}, password {PASSWORD}"
            );
        }
        println!("  API documentation: http://127.0.0.1:9093/api-docs (same user)");
        println!();
        println!(
            "Send a message from {} to {}:",
            INTEGRATION_POINTS[0].0, INTEGRATION_POINTS[1].0
        );
        println!("{}", curl_line(&examples));
        println!();
        println!("Or run `cargo xtask demo` beside it.");
        Ok(())
    })();
    if let Err(error) = outcome {
        for (_, child) in &mut children {
            let _ = child.kill();
        }
        return Err(error);
    }
    loop {
        let stopped = children
            .iter_mut()
            .find_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some(format!("{name} stopped: {status}")),
                Ok(None) => None,
                Err(error) => Some(format!("{name}: {error}")),
            });
        if let Some(reason) = stopped {
            for (_, child) in &mut children {
                let _ = child.kill();
            }
            bail!(reason);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
