//! The script's output split at its marker lines into named sections and the script's notes.
use std::collections::BTreeMap;

use crate::discovery::script::marker;

/// The script's output, split at its markers.
#[derive(Debug, Default)]
pub struct Sections {
    /// Section name → its lines (without surrounding blank lines).
    pub text: BTreeMap<String, Vec<String>>,
    /// Notes printed by the script (`!code` lines), in order.
    pub notes: Vec<String>,
}

impl Sections {
    /// Splits `output` at the marker lines of `nonce`. Text before the first marker (a login
    /// banner, a shell's complaints) is ignored.
    pub fn split(output: &str, nonce: &str) -> Self {
        let m = marker(nonce);
        let mut s = Sections::default();
        let mut current: Option<String> = None;
        for line in output.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix(&m).and_then(|r| r.strip_prefix(' ')) {
                if let Some(note) = rest.strip_prefix('!') {
                    s.notes.push(note.trim().to_string());
                } else {
                    let name = rest.trim().to_string();
                    s.text.entry(name.clone()).or_default();
                    current = Some(name);
                }
                continue;
            }
            if let Some(name) = &current {
                s.text
                    .entry(name.clone())
                    .or_default()
                    .push(line.to_string());
            }
        }
        for lines in s.text.values_mut() {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            while lines.first().is_some_and(|l| l.trim().is_empty()) {
                lines.remove(0);
            }
        }
        s
    }

    pub(super) fn lines(&self, name: &str) -> &[String] {
        self.text.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(super) fn first(&self, name: &str) -> Option<String> {
        self.lines(name)
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.text.contains_key(name)
    }
}
