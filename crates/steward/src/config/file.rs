//! The TOML file: global keys at the top, `steward serve`'s settings in a table per section; and
//! [`overlay`], which lays what clap read over what the file says.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{GlobalOpts, ServeOpts};

/// The file's contents (every key optional).
#[derive(Debug, Default, Clone)]
pub struct FileConfig {
    /// The top-level keys (`data_dir`, `log_level` …).
    pub global: GlobalOpts,
    /// The sections (`[http]`, `[auth]` …).
    pub serve: ServeOpts,
}

/// Reads the TOML file, if one is named.
pub fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    FileConfig::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl FileConfig {
    /// Parses the file's text. A key outside its section (the flat form from before sections,
    /// or the wrong table) is an error that names the section it belongs in.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = toml::from_str(text)?;
        Layout::of_the_structs().check(&table)?;
        // Each part ignores the other's keys; unknown keys inside a section are refused by the
        // section (`deny_unknown_fields`), with the line they are on.
        Ok(Self {
            global: toml::from_str(text)?,
            serve: toml::from_str(text)?,
        })
    }
}

/// Which keys the file may hold where, read from the clap definitions: the global options'
/// ids, and each section's group id with its arguments' ids. (An argument's id is its field's
/// name, and so its serde key.)
pub(super) struct Layout {
    pub globals: Vec<String>,
    pub sections: BTreeMap<String, Vec<String>>,
}

impl Layout {
    pub fn of_the_structs() -> Self {
        let ids = |c: &clap::Command| -> Vec<String> {
            c.get_arguments().map(|a| a.get_id().to_string()).collect()
        };
        let globals = GlobalOpts::augment_args(clap::Command::new("steward"));
        let serve = ServeOpts::augment_args(clap::Command::new("serve"));
        let sections = serve
            .get_groups()
            .map(|g| {
                let keys = g.get_args().map(ToString::to_string).collect();
                (g.get_id().to_string(), keys)
            })
            .collect();
        Self {
            globals: ids(&globals)
                .into_iter()
                .filter(|id| id != "config")
                .collect(),
            sections,
        }
    }

    /// The section a serve setting belongs to.
    fn section_of(&self, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k == key))
            .map(|(section, _)| section.as_str())
    }

    /// Refuses keys at the wrong level, naming where each belongs, and unknown top-level keys.
    fn check(&self, table: &toml::Table) -> anyhow::Result<()> {
        let mut moved = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in table {
            if self.globals.contains(key) {
                continue;
            }
            if let Some(keys) = self.sections.get(key) {
                for inner in value.as_table().into_iter().flat_map(|t| t.keys()) {
                    if keys.contains(inner) {
                        continue;
                    }
                    if let Some(home) = self.section_of(inner) {
                        moved.push(format!("`{inner}` belongs under `[{home}]`, not `[{key}]`"));
                    }
                }
                continue;
            }
            match self.section_of(key) {
                Some(home) => moved.push(format!("`{key}` is now under `[{home}]`")),
                None => unknown.push(format!("`{key}`")),
            }
        }
        if !moved.is_empty() {
            anyhow::bail!(
                "{} (the settings of `steward serve` are grouped in sections; see the README's \
                 configuration table)",
                moved.join("; ")
            );
        }
        if !unknown.is_empty() {
            let sections: Vec<String> = self.sections.keys().map(|s| format!("[{s}]")).collect();
            anyhow::bail!(
                "unknown key {}; the top level takes {} and the sections {}",
                unknown.join(", "),
                self.globals.join(", "),
                sections.join(", ")
            );
        }
        Ok(())
    }
}

/// `over`'s values laid over `base`'s, key by key and section by section: a value `over` has
/// (clap read it from a flag or the environment) replaces `base`'s (the file's), and one it
/// lacks (`None`) leaves `base`'s. Works for every section alike, through their serde form.
pub fn overlay<T: Serialize + DeserializeOwned>(over: &T, base: &T) -> anyhow::Result<T> {
    let mut merged = serde_json::to_value(base)?;
    lay(&mut merged, serde_json::to_value(over)?);
    Ok(serde_json::from_value(merged)?)
}

fn lay(base: &mut Value, over: Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                lay(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}
