//! JSON Schemas from Rust types, and validation of inputs against them with errors that
//! name the input at fault.
//!
//! Schemas are generated once from the resource type's `Inputs`/`Outputs` types (schemars),
//! so what `describe` announces is exactly what the code accepts.

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use nixops4_provider_protocol::{InputPath, PathSegment};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::ProviderError;

/// The JSON Schema (2020-12) of `T`, self-contained (no `$ref`), as `describe` sends it.
pub fn schema_for<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
    }
    schema
}

/// The schema of an operation that takes no arguments.
pub fn no_arguments() -> Value {
    serde_json::json!({ "type": "object", "properties": {}, "additionalProperties": false })
}

/// A compiled schema that validates input properties or operation arguments.
pub(crate) struct InputValidator {
    schema: Value,
    validator: jsonschema::Validator,
}

impl InputValidator {
    pub(crate) fn new(schema: &Value) -> InputValidator {
        let validator = jsonschema::draft202012::new(schema)
            .unwrap_or_else(|e| panic!("a provider's own schema must compile: {e}\n{schema}"));
        InputValidator {
            schema: schema.clone(),
            validator,
        }
    }

    /// Checks `value`; the error names the first fault (by input path) and counts the rest.
    /// `what` says what is validated, e.g. "input" or "argument".
    pub(crate) fn check(&self, value: &Value, what: &str) -> Result<(), ProviderError> {
        // An unknown input is usually a misspelt one, which also makes the real one
        // "missing": report it first.
        let mut faults: Vec<(u8, InputPath, String)> = self
            .validator
            .iter_errors(value)
            .map(|error| self.describe(&error, what))
            .collect();
        if faults.is_empty() {
            return Ok(());
        }
        faults.sort_by_key(|(rank, path, _)| (*rank, path.to_string()));
        faults.dedup();
        let (_, path, mut message) = faults.remove(0);
        match faults.len() {
            0 => {}
            1 => message.push_str(&format!(" (and 1 more problem: {})", faults[0].2)),
            n => message.push_str(&format!(" (and {n} more problems)")),
        }
        Err(ProviderError::invalid_input(message).at(path))
    }

    /// The fault's rank in the report (lower first), its path and its message.
    fn describe(
        &self,
        error: &jsonschema::ValidationError<'_>,
        what: &str,
    ) -> (u8, InputPath, String) {
        let at = InputPath(
            error
                .instance_path()
                .segments()
                .map(|segment| match segment {
                    LocationSegment::Property(key) => PathSegment::Key(key.into_owned()),
                    LocationSegment::Index(index) => PathSegment::Index(index as u64),
                })
                .collect(),
        );
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default().to_owned();
                let path = at.join(PathSegment::Key(name));
                let message = format!("missing required {what} `{path}`");
                (2, path, message)
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let name = unexpected.first().cloned().unwrap_or_default();
                let known = self.known_keys(&at);
                let path = at.join(PathSegment::Key(name.clone()));
                let mut message = format!("unknown {what} `{path}`");
                if let Some(close) = did_you_mean(&name, &known) {
                    message.push_str(&format!(" (did you mean `{close}`?)"));
                } else if !known.is_empty() {
                    message.push_str(&format!(" (expected one of: {})", known.join(", ")));
                }
                (0, path, message)
            }
            ValidationErrorKind::Type { .. } => {
                let message = format!(
                    "{what} `{at}` has the wrong type: {} (got {})",
                    error,
                    json_type(error.instance())
                );
                (1, at, message)
            }
            _ => {
                let message = format!("{what} `{at}` is invalid: {error}");
                (1, at, message)
            }
        }
    }

    /// The property names the schema allows at `path`, for suggestions.
    fn known_keys(&self, path: &InputPath) -> Vec<String> {
        let mut schema = &self.schema;
        for segment in &path.0 {
            let next = match segment {
                PathSegment::Key(key) => schema.get("properties").and_then(|p| p.get(key)),
                PathSegment::Index(_) => schema.get("items"),
            };
            match next {
                Some(next) => schema = next,
                None => return Vec::new(),
            }
        }
        schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 4) && *distance < c.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an attribute set",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// Inputs of a made-up resource type.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inputs {
        /// Where it goes.
        name: String,
        #[serde(default)]
        args: Vec<String>,
        mode: Option<String>,
    }

    fn check(value: Value) -> Result<(), ProviderError> {
        InputValidator::new(&schema_for::<Inputs>()).check(&value, "input")
    }

    #[test]
    fn generated_schema_carries_docs_and_required() {
        let schema = schema_for::<Inputs>();
        assert_eq!(
            schema["properties"]["name"]["description"],
            "Where it goes."
        );
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(schema["additionalProperties"], json!(false));
    }

    #[test]
    fn accepts_valid_inputs() {
        check(json!({"name": "x", "args": ["a"], "mode": null})).unwrap();
    }

    #[test]
    fn unknown_input_suggests_the_close_one() {
        let e = check(json!({"nmae": "x"})).unwrap_err();
        assert_eq!(e.input_path, Some(InputPath::key("nmae")));
        assert!(
            e.message
                .starts_with("unknown input `nmae` (did you mean `name`?)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_required_names_it() {
        let e = check(json!({})).unwrap_err();
        assert_eq!(e.message, "missing required input `name`");
        assert_eq!(e.input_path, Some(InputPath::key("name")));
    }

    #[test]
    fn wrong_type_names_the_nested_path() {
        let e = check(json!({"name": "x", "args": ["a", 3]})).unwrap_err();
        assert_eq!(
            e.input_path,
            Some(InputPath::key("args").join(PathSegment::Index(1)))
        );
        assert!(
            e.message.contains("`args[1]` has the wrong type"),
            "{}",
            e.message
        );
        assert!(e.message.contains("got an integer"), "{}", e.message);
    }

    #[test]
    fn several_faults_are_counted() {
        let e = check(json!({"nmae": 1, "args": 2})).unwrap_err();
        assert!(e.message.contains("more problem"), "{}", e.message);
    }

    #[test]
    fn suggestions_only_for_likely_typos() {
        let candidates = vec!["contents".to_owned(), "name".to_owned()];
        assert_eq!(did_you_mean("contnets", &candidates), Some("contents"));
        assert_eq!(did_you_mean("zzzz", &candidates), None);
    }
}
