//! The one redaction step. [`Secrets`] holds every secret value the engine knows of in a
//! session: the secret outputs recorded in state, and those that calls return during a
//! run. Every text that leaves the engine (events, errors, reports, plans, provider
//! stderr, state documents, outputs) passes through it, so a secret shows as
//! `(sensitive)` wherever it appears, also inside a longer string.
//!
//! The rule for short values: a secret shorter than [`SEARCHED_LENGTH`] characters is
//! not searched for inside texts (a 3-character secret would blank out every word that
//! contains it); it is still hidden wherever a whole value equals it. A multi-line secret
//! (a private key) is also searched line by line in texts, so a log that quotes part of it
//! shows none of that part, and so is its JSON-escaped form, as it appears in a quoted
//! message. Lines do not make a value sensitive: a public key shares lines of base64
//! with its private key, and is not secret.

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
    /// What makes a value sensitive when it contains it: the long values and their
    /// escaped forms.
    whole: BTreeSet<String>,
    /// Also hidden inside texts: the lines of multi-line values.
    parts: BTreeSet<String>,
    /// Matchers for `whole`, and for `whole` and `parts`, built when first needed after
    /// a change.
    whole_matcher: Option<AhoCorasick>,
    text_matcher: Option<AhoCorasick>,
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
            let escaped = Value::String(text.to_owned()).to_string();
            for whole in [text.to_owned(), escaped[1..escaped.len() - 1].to_owned()] {
                if whole.chars().count() >= SEARCHED_LENGTH && known.whole.insert(whole) {
                    known.whole_matcher = None;
                    known.text_matcher = None;
                }
            }
            if text.lines().nth(1).is_some() {
                for line in text.lines().map(str::trim) {
                    if line.chars().count() >= SEARCHED_LENGTH
                        && known.parts.insert(line.to_owned())
                    {
                        known.text_matcher = None;
                    }
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
        match known.text_matcher() {
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
                || known.whole_matcher().is_some_and(|m| m.is_match(text));
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
    fn whole_matcher(&mut self) -> Option<&AhoCorasick> {
        if self.whole_matcher.is_none() {
            self.whole_matcher = matcher(self.whole.iter());
        }
        self.whole_matcher.as_ref()
    }

    fn text_matcher(&mut self) -> Option<&AhoCorasick> {
        if self.text_matcher.is_none() {
            self.text_matcher = matcher(self.whole.iter().chain(&self.parts));
        }
        self.text_matcher.as_ref()
    }
}

/// One automaton for all the patterns, longest match first, so a whole key is hidden
/// before one of its lines; none for no patterns.
fn matcher<'a>(patterns: impl Iterator<Item = &'a String>) -> Option<AhoCorasick> {
    let patterns: Vec<&String> = patterns.collect();
    if patterns.is_empty() {
        return None;
    }
    AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(patterns)
        .ok()
}

/// The JSON pointers of the strings in `value` that are sensitive, for a record to keep.
pub fn sensitive_strings(value: &Map<String, Value>, secrets: &Secrets) -> Vec<String> {
    fn walk(value: &Value, at: String, secrets: &Secrets, found: &mut Vec<String>) {
        match value {
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    walk(item, format!("{at}/{n}"), secrets, found);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    walk(item, format!("{at}/{key}"), secrets, found);
                }
            }
            leaf if secrets.is_sensitive(leaf) => found.push(at),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (key, item) in value {
        let key = key.replace('~', "~0").replace('/', "~1");
        walk(item, format!("/{key}"), secrets, &mut found);
    }
    found
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
    fn a_multi_line_secret_is_hidden_line_by_line_in_texts_and_escaped() {
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
        // The public key shares a line of base64 with the private one: it is not secret.
        assert!(!secrets.is_sensitive(&json!("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB")));
    }

    #[test]
    fn the_strings_of_inputs_that_hold_a_secret_are_named_by_pointer() {
        let secrets = secrets(&["s3cr3t-private-key"]);
        let inputs = json!({
            "ssh": { "host": "127.0.3.1", "privateKey": "s3cr3t-private-key" },
            "keys": [ "public", "x s3cr3t-private-key" ],
            "a/b": "s3cr3t-private-key",
        });
        assert_eq!(
            sensitive_strings(inputs.as_object().unwrap(), &secrets),
            ["/a~1b", "/keys/1", "/ssh/privateKey"]
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
