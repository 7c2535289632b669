//! The one redaction step. [`Secrets`] holds every secret value the engine knows of in a
//! session: the secret outputs recorded in state, and those that calls return during a
//! run. Every text that leaves the engine (events, errors, reports, plans, provider
//! stderr, state documents, outputs) passes through it, so a secret shows as
//! `(sensitive)` wherever it appears, also inside a longer string.
//!
//! The rule for short values: a secret shorter than [`SEARCHED_LENGTH`] characters is
//! not searched for inside texts (a 3-character secret would blank out every word that
//! contains it); it is still hidden wherever a whole value equals it. A multi-line secret
//! (a private key) is also searched line by line, so a log that quotes part of it shows
//! none of that part, and so is its JSON-escaped form, as it appears in a quoted message.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aho_corasick::AhoCorasick;
use serde_json::{Map, Value};

/// What a hidden value or text part is replaced with.
pub const PLACEHOLDER: &str = "(sensitive)";

/// Secrets at least this long (in characters) are also hidden inside longer texts.
pub const SEARCHED_LENGTH: usize = 6;

/// The secret values known so far, shared by everything in one engine session.
#[derive(Clone, Default)]
pub struct Secrets {
    known: Arc<Mutex<Known>>,
}

#[derive(Default)]
struct Known {
    /// Every secret value, whole: a value equal to one of these is hidden.
    values: BTreeSet<String>,
    /// What is searched for inside texts: the long values, their lines and escaped forms.
    searched: BTreeSet<String>,
    /// A matcher for `searched`, built when it is first needed after a change.
    matcher: Option<AhoCorasick>,
}

impl Secrets {
    /// Learns the secret outputs `names` among `outputs`.
    pub fn learn_outputs(&self, names: &[String], outputs: &Map<String, Value>) {
        for name in names {
            if let Some(value) = outputs.get(name) {
                self.learn(value);
            }
        }
    }

    /// Learns a secret value; a structured one by each of its strings.
    pub fn learn(&self, value: &Value) {
        let mut known = self.lock();
        let mut add = |text: &str| {
            if text.is_empty() || !known.values.insert(text.to_owned()) {
                return;
            }
            let mut parts = vec![text.to_owned()];
            parts.extend(text.lines().map(|line| line.trim().to_owned()));
            let escaped = Value::String(text.to_owned()).to_string();
            parts.push(escaped[1..escaped.len() - 1].to_owned());
            for part in parts {
                if part.chars().count() >= SEARCHED_LENGTH && known.searched.insert(part) {
                    known.matcher = None;
                }
            }
        };
        match value {
            Value::String(text) => add(text),
            Value::Array(_) | Value::Object(_) => for_each_string(value, &mut |s| add(s)),
            other => add(&other.to_string()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lock().values.is_empty()
    }

    /// The text with every secret in it replaced by [`PLACEHOLDER`].
    pub fn redact(&self, text: &str) -> String {
        let mut known = self.lock();
        if known.values.contains(text) {
            return PLACEHOLDER.to_owned();
        }
        match known.matcher() {
            Some(matcher) => matcher.replace_all(text, &vec![PLACEHOLDER; matcher.patterns_len()]),
            None => text.to_owned(),
        }
    }

    /// Whether a value is a secret or contains one anywhere: a value derived from a
    /// secret is as sensitive as the secret.
    pub fn is_sensitive(&self, value: &Value) -> bool {
        let mut known = self.lock();
        let mut found = false;
        for_each_string(value, &mut |text| {
            found = found
                || known.values.contains(text)
                || known.matcher().is_some_and(|m| m.is_match(text));
        });
        found
            || (!value.is_string() && !value.is_array() && !value.is_object())
                && known.values.contains(&value.to_string())
    }

    /// Replaces each value of `properties` that is sensitive with [`PLACEHOLDER`].
    pub fn hide_properties(&self, properties: &mut Map<String, Value>) {
        for value in properties.values_mut() {
            self.hide_value(value);
        }
    }

    /// Replaces the value with [`PLACEHOLDER`] when it is sensitive.
    pub fn hide_value(&self, value: &mut Value) {
        if self.is_sensitive(value) {
            *value = Value::String(PLACEHOLDER.into());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Two handles are equal when they share one set: provider commands compare by it.
impl PartialEq for Secrets {
    fn eq(&self, other: &Secrets) -> bool {
        Arc::ptr_eq(&self.known, &other.known)
    }
}

impl Eq for Secrets {}

impl std::hash::Hash for Secrets {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.known).hash(state);
    }
}

/// Never shows a value.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} known)", self.lock().values.len())
    }
}

impl Known {
    fn matcher(&mut self) -> Option<&AhoCorasick> {
        if self.searched.is_empty() {
            return None;
        }
        if self.matcher.is_none() {
            // Longest first, so a whole key is hidden before one of its lines.
            let mut patterns: Vec<&String> = self.searched.iter().collect();
            patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
            self.matcher = AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(patterns)
                .ok();
        }
        self.matcher.as_ref()
    }
}

fn for_each_string(value: &Value, visit: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => visit(text),
        Value::Array(items) => items.iter().for_each(|item| for_each_string(item, visit)),
        Value::Object(map) => map.values().for_each(|item| for_each_string(item, visit)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secrets(values: &[&str]) -> Secrets {
        let secrets = Secrets::default();
        for value in values {
            secrets.learn(&json!(value));
        }
        secrets
    }

    #[test]
    fn a_secret_is_hidden_inside_longer_text() {
        let secrets = secrets(&["s3cr3t-pass"]);
        assert_eq!(
            secrets.redact("postgres://app:s3cr3t-pass@db/x and s3cr3t-pass again"),
            "postgres://app:(sensitive)@db/x and (sensitive) again"
        );
        assert_eq!(secrets.redact("nothing here"), "nothing here");
    }

    #[test]
    fn a_short_secret_is_hidden_only_where_it_is_the_whole_value() {
        let secrets = secrets(&["abc"]);
        assert_eq!(secrets.redact("abcdef"), "abcdef");
        assert_eq!(secrets.redact("abc"), "(sensitive)");
        assert!(secrets.is_sensitive(&json!("abc")));
        assert!(!secrets.is_sensitive(&json!("abcdef")));
    }

    #[test]
    fn a_multi_line_secret_is_hidden_line_by_line_and_escaped() {
        let key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\nQQQQQQQQQQQQQQQQQQ\n-----END KEY-----\n";
        let secrets = secrets(&[key]);
        let tail = "error: bad key ending with\nQQQQQQQQQQQQQQQQQQ\n-----END KEY-----";
        assert!(
            !secrets.redact(tail).contains("QQQQ"),
            "{}",
            secrets.redact(tail)
        );
        let quoted = format!("inputs: {}", json!({ "key": key }));
        assert!(
            !secrets.redact(&quoted).contains("AAAAB3"),
            "{}",
            secrets.redact(&quoted)
        );
    }

    #[test]
    fn a_value_derived_from_a_secret_is_sensitive() {
        let secrets = secrets(&["s3cr3t-token"]);
        let mut inputs = json!({
            "url": "https://x/?t=s3cr3t-token",
            "list": ["a", { "deep": "s3cr3t-token" }],
            "plain": "hello"
        });
        secrets.hide_properties(inputs.as_object_mut().unwrap());
        assert_eq!(
            inputs,
            json!({ "url": "(sensitive)", "list": "(sensitive)", "plain": "hello" })
        );
    }

    #[test]
    fn secrets_learned_later_are_hidden_too() {
        let secrets = secrets(&["first-secret"]);
        assert_eq!(secrets.redact("second-secret"), "second-secret");
        secrets.learn_outputs(
            &["token".into()],
            json!({ "token": "second-secret", "public": "shown" })
                .as_object()
                .unwrap(),
        );
        assert_eq!(secrets.redact("second-secret shown"), "(sensitive) shown");
    }
}
