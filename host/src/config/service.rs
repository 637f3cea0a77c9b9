//! The configuration service (Konfigurasjonstjeneste), spoken to with the Spring Cloud Config
//! protocol: `GET {url}/{application}/{profile}` answers `propertySources`, each a flat map of
//! dotted keys, the first source winning.
//!
//! It is fetched once at start. Every good answer is saved on disk, so that when the service is
//! down an operator can choose to start from the last copy instead of not starting at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

use super::layers::Source;
use super::settings::WhenUnreachable;

/// What the service answered, as layers of increasing priority.
pub type Sources = Vec<(Table, Source)>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    property_sources: Vec<PropertySource>,
}

#[derive(Deserialize)]
struct PropertySource {
    name: String,
    source: serde_json::Map<String, serde_json::Value>,
}

/// Where to reach the service and what to do without it.
pub struct Request<'a> {
    /// The base URL.
    pub url: &'a str,
    /// The application name.
    pub application: &'a str,
    /// The profile.
    pub profile: &'a str,
    /// Attempts before giving up.
    pub attempts: u32,
    /// What to do when it cannot be reached.
    pub when_unreachable: WhenUnreachable,
    /// Where the last good answer is saved.
    pub saved_copy: &'a Path,
}

/// The service's property sources, or the saved copy's when allowed.
pub async fn fetch(request: &Request<'_>) -> Result<Sources, String> {
    let url = format!(
        "{}/{}/{}",
        request.url.trim_end_matches('/'),
        urlencoding::encode(request.application),
        urlencoding::encode(request.profile)
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| error.to_string())?;
    let mut delay = Duration::from_millis(200);
    let mut last_error = String::new();
    for attempt in 1..=request.attempts.max(1) {
        match get(&client, &url).await {
            Ok(body) => {
                let sources = parse(&body, |name| Source::ConfigurationService(name.to_owned()))?;
                if let Err(error) = save(request.saved_copy, &body) {
                    tracing::warn!(path = %request.saved_copy.display(), %error, "could not save the configuration service's answer");
                }
                return Ok(sources);
            }
            Err(error) => {
                tracing::warn!(%url, attempt, %error, "configuration service unreachable");
                last_error = error;
            }
        }
        if attempt < request.attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
    match request.when_unreachable {
        WhenUnreachable::UseSavedCopy => {
            let body = std::fs::read(request.saved_copy).map_err(|error| {
                format!(
                    "the configuration service {url} is unreachable ({last_error}) and there is no saved copy at {}: {error}",
                    request.saved_copy.display()
                )
            })?;
            tracing::warn!(path = %request.saved_copy.display(), "starting from the saved copy of the configuration service's answer");
            let saved: PathBuf = request.saved_copy.to_path_buf();
            parse(&body, |_| Source::SavedConfiguration(saved.clone()))
        }
        WhenUnreachable::Fail => Err(format!(
            "the configuration service {url} is unreachable after {} attempts ({last_error}); set \
             config-service.when-unreachable = \"use-saved-copy\" to start from the last saved copy",
            request.attempts.max(1)
        )),
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|error| error.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(body.to_vec())
}

fn save(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, body)?;
    std::fs::rename(partial, path)
}

/// The property sources of an answer, lowest priority first.
fn parse(body: &[u8], source: impl Fn(&str) -> Source) -> Result<Sources, String> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|error| format!("the configuration service's answer is not valid: {error}"))?;
    let mut layers = Vec::new();
    for property_source in answer.property_sources.into_iter().rev() {
        let mut table = Table::new();
        for (key, value) in property_source.source {
            let value = match value {
                serde_json::Value::String(text) => Value::String(text),
                serde_json::Value::Bool(flag) => Value::Boolean(flag),
                serde_json::Value::Number(number) => match number.as_i64() {
                    Some(integer) => Value::Integer(integer),
                    None => Value::Float(number.as_f64().unwrap_or_default()),
                },
                other => {
                    return Err(format!(
                        "property {key:?} of {}: unsupported value {other}",
                        property_source.name
                    ));
                }
            };
            insert(&mut table, &key, value).map_err(|reason| {
                format!("property {key:?} of {}: {reason}", property_source.name)
            })?;
        }
        layers.push((table, source(&property_source.name)));
    }
    Ok(layers)
}

fn insert(table: &mut Table, key: &str, value: Value) -> Result<(), String> {
    let segments: Vec<&str> = key.split('.').collect();
    let (last, parents) = segments.split_last().ok_or("an empty key")?;
    let mut table = table;
    for segment in parents {
        table = table
            .entry(segment.to_string())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{segment} is both a value and a table"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}
