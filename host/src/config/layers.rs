//! Configuration as layers of TOML, each value remembering where it came from.
//!
//! The environment file, the configuration service, the operator file and environment variables
//! are merged in that order, later layers winning key by key. Keeping the origin of every leaf
//! (file and line, variable name, or property source) is what lets an error name the file, line
//! and key, and `config check` print where each value came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file of the environment (`config/<profile>.toml`).
    EnvironmentFile { path: PathBuf, line: usize },
    /// The operator's file.
    OperatorFile { path: PathBuf, line: usize },
    /// An `IP__…` environment variable.
    EnvironmentVariable(String),
    /// The configuration service (its property source name).
    ConfigurationService(String),
    /// The saved copy of the configuration service's answer.
    SavedConfiguration(PathBuf),
    /// A default of the integration point.
    Default,
}

impl Source {
    /// `file:line` or the variable or service, for messages.
    pub fn location(&self) -> String {
        match self {
            Source::EnvironmentFile { path, line } | Source::OperatorFile { path, line } => {
                format!("{}:{line}", path.display())
            }
            Source::EnvironmentVariable(name) => format!("environment variable {name}"),
            Source::ConfigurationService(name) => format!("configuration service ({name})"),
            Source::SavedConfiguration(path) => {
                format!("saved configuration service copy {}", path.display())
            }
            Source::Default => "default".into(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Source::EnvironmentFile { .. } => "environment file",
            Source::OperatorFile { .. } => "operator file",
            Source::EnvironmentVariable(_) => "environment variable",
            Source::ConfigurationService(_) => "configuration service",
            Source::SavedConfiguration(_) => "configuration service (saved copy)",
            Source::Default => "default",
        };
        write!(f, "{kind}: {}", self.location())
    }
}

/// A configuration problem, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `file:line`, a variable, or the file when no line applies.
    pub location: String,
    /// The dotted key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.key, self.reason)
    }
}

/// The merged tree and the origin of each leaf.
#[derive(Clone, Debug, Default)]
pub struct Layers {
    tree: Table,
    sources: BTreeMap<String, Source>,
    tables: BTreeMap<String, Source>,
    home: PathBuf,
}

impl Layers {
    /// The merged tree.
    pub fn tree(&self) -> &Table {
        &self.tree
    }

    /// Every leaf's origin, by dotted key.
    pub fn sources(&self) -> &BTreeMap<String, Source> {
        &self.sources
    }

    /// Layers whose defaults are relative to `home` (the operator file's directory).
    pub fn with_home(home: PathBuf) -> Self {
        Self {
            home,
            ..Self::default()
        }
    }

    /// The directory a path set by `key` is relative to: that of the file that set it, else
    /// the home directory.
    pub fn base_dir(&self, key: &str) -> PathBuf {
        match self.sources.get(key) {
            Some(Source::EnvironmentFile { path, .. } | Source::OperatorFile { path, .. }) => {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            _ => self.home.clone(),
        }
    }

    /// Where the key (or the nearest enclosing key that has an origin) was set.
    pub fn source_of(&self, key: &str) -> Option<&Source> {
        let mut key = key;
        loop {
            if let Some(source) = self.sources.get(key).or_else(|| self.tables.get(key)) {
                return Some(source);
            }
            key = key.rsplit_once('.')?.0;
        }
    }

    /// Adds a TOML file over the layers so far; `operator` says which kind of file it is.
    pub fn add_file(&mut self, path: &Path, operator: bool) -> Result<(), Problem> {
        let text = std::fs::read_to_string(path).map_err(|error| Problem {
            location: path.display().to_string(),
            key: "(file)".into(),
            reason: format!("cannot be read: {error}"),
        })?;
        let table: Table = toml::from_str(&text).map_err(|error| Problem {
            location: match error.span() {
                Some(span) => format!("{}:{}", path.display(), line_of(&text, span.start)),
                None => path.display().to_string(),
            },
            key: "(syntax)".into(),
            reason: error.message().trim().to_owned(),
        })?;
        let mut lines = BTreeMap::new();
        if let Ok(spanned) = toml::de::DeTable::parse(&text) {
            collect_lines(spanned.get_ref(), "", &text, &mut lines);
        }
        let source = |key: &str| {
            let line = lines.get(key).copied().unwrap_or(1);
            if operator {
                Source::OperatorFile {
                    path: path.to_path_buf(),
                    line,
                }
            } else {
                Source::EnvironmentFile {
                    path: path.to_path_buf(),
                    line,
                }
            }
        };
        self.merge(table, &source);
        Ok(())
    }

    /// Adds a tree whose leaves all come from one source.
    pub fn add_tree(&mut self, table: Table, source: Source) {
        self.merge(table, &|_| source.clone());
    }

    /// Adds `IP__SECTION__KEY=value` variables. A value overriding text stays text; otherwise it
    /// is read as a TOML value when it parses as one (numbers, booleans, arrays), else as text.
    pub fn add_variables(
        &mut self,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), Problem> {
        for (name, raw) in variables {
            let Some(path) = name.strip_prefix("IP__") else {
                continue;
            };
            let segments: Vec<String> = path
                .split("__")
                .map(|s| s.to_ascii_lowercase().replace('_', "-"))
                .collect();
            if segments.iter().any(String::is_empty) {
                return Err(Problem {
                    location: format!("environment variable {name}"),
                    key: segments.join("."),
                    reason: "an empty segment; write IP__SECTION__KEY=value".into(),
                });
            }
            let lower_is_text = lookup(&self.tree, &segments).is_some_and(Value::is_str);
            let value = if lower_is_text {
                Value::String(raw)
            } else {
                toml::from_str::<Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut table| table.remove("v"))
                    .unwrap_or(Value::String(raw))
            };
            let mut table = Table::new();
            let mut leaf = &mut table;
            for segment in &segments[..segments.len() - 1] {
                leaf = leaf
                    .entry(segment.clone())
                    .or_insert_with(|| Value::Table(Table::new()))
                    .as_table_mut()
                    .expect("just inserted a table");
            }
            leaf.insert(segments[segments.len() - 1].clone(), value);
            self.merge(table, &|_| Source::EnvironmentVariable(name.clone()));
        }
        Ok(())
    }

    fn merge(&mut self, table: Table, source: &dyn Fn(&str) -> Source) {
        let mut origins = Origins {
            leaves: &mut self.sources,
            tables: &mut self.tables,
        };
        merge_into(&mut self.tree, table, "", source, &mut origins);
    }
}

fn lookup<'a>(table: &'a Table, segments: &[String]) -> Option<&'a Value> {
    let (last, parents) = segments.split_last()?;
    let mut table = table;
    for segment in parents {
        table = table.get(segment)?.as_table()?;
    }
    table.get(last)
}

/// The origins of leaves, and of tables (where a table was first written, for messages about a
/// whole section).
struct Origins<'a> {
    leaves: &'a mut BTreeMap<String, Source>,
    tables: &'a mut BTreeMap<String, Source>,
}

fn merge_into(
    into: &mut Table,
    from: Table,
    prefix: &str,
    source: &dyn Fn(&str) -> Source,
    origins: &mut Origins<'_>,
) {
    for (key, value) in from {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (into.get_mut(&key), value) {
            (Some(Value::Table(existing)), Value::Table(table)) => {
                merge_into(existing, table, &path, source, origins)
            }
            (_, value) => {
                let dotted = format!("{path}.");
                origins
                    .leaves
                    .retain(|known, _| known != &path && !known.starts_with(&dotted));
                record(&value, &path, source, origins);
                into.insert(key, value);
            }
        }
    }
}

fn record(value: &Value, path: &str, source: &dyn Fn(&str) -> Source, origins: &mut Origins<'_>) {
    match value {
        Value::Table(table) if !table.is_empty() => {
            origins
                .tables
                .entry(path.to_owned())
                .or_insert_with(|| source(path));
            for (key, value) in table {
                record(value, &format!("{path}.{key}"), source, origins);
            }
        }
        _ => {
            origins.leaves.insert(path.to_owned(), source(path));
        }
    }
}

fn collect_lines(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    text: &str,
    lines: &mut BTreeMap<String, usize>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        lines.insert(path.clone(), line_of(text, key.span().start));
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            collect_lines(inner, &path, text, lines);
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_key_by_key_and_remember_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let environment = dir.path().join("production.toml");
        std::fs::write(
            &environment,
            "[api]\nlisten = \"0.0.0.0:9093\"\n\n[retry]\nmax-hours = 100\n",
        )
        .unwrap();
        let operator = dir.path().join("integrasjonspunkt.toml");
        std::fs::write(&operator, "# operator\n[retry]\n\nmax-hours = 24\n").unwrap();
        let mut layers = Layers::default();
        layers.add_file(&environment, false).unwrap();
        layers.add_file(&operator, true).unwrap();
        layers
            .add_variables([
                ("IP__API__LISTEN".to_owned(), "127.0.0.1:1".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ])
            .unwrap();
        assert_eq!(layers.tree()["retry"]["max-hours"].as_integer(), Some(24));
        assert_eq!(layers.tree()["api"]["listen"].as_str(), Some("127.0.0.1:1"));
        assert_eq!(
            layers.source_of("retry.max-hours"),
            Some(&Source::OperatorFile {
                path: operator.clone(),
                line: 4
            })
        );
        assert_eq!(
            layers.source_of("api.listen"),
            Some(&Source::EnvironmentVariable("IP__API__LISTEN".into()))
        );
        // A section's origin is where it was first written.
        assert_eq!(
            layers.source_of("retry"),
            Some(&Source::EnvironmentFile {
                path: environment,
                line: 4
            })
        );
    }

    #[test]
    fn variables_are_typed_when_they_parse_and_segments_become_kebab_case() {
        let mut layers = Layers::default();
        layers
            .add_variables([
                ("IP__RETRY__MAX_HOURS".to_owned(), "12".to_owned()),
                (
                    "IP__ORGANISATION__NUMBER".to_owned(),
                    "910075918".to_owned(),
                ),
                (
                    "IP__CHANNELS__ENABLED".to_owned(),
                    "[\"dpo\", \"dpe\"]".to_owned(),
                ),
                (
                    "IP__ORGANISATION__NAME".to_owned(),
                    "Etat for tester".to_owned(),
                ),
            ])
            .unwrap();
        assert_eq!(layers.tree()["retry"]["max-hours"].as_integer(), Some(12));
        assert_eq!(
            layers.tree()["channels"]["enabled"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            layers.tree()["organisation"]["name"].as_str(),
            Some("Etat for tester")
        );
        let problem = layers
            .add_variables([("IP__API____LISTEN".to_owned(), "x".to_owned())])
            .unwrap_err();
        assert!(problem.location.contains("IP__API____LISTEN"));
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, "[api]\nlisten = \n").unwrap();
        let problem = Layers::default().add_file(&path, true).unwrap_err();
        assert!(problem.location.ends_with("broken.toml:2"), "{problem}");
    }
}
