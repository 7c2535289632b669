//! Diagnostics as you type: syntax errors, unknown resource types, unknown inputs (with a
//! suggestion), missing required inputs, literals of the wrong JSON type, and references
//! to unknown resources or outputs. Each has a precise range and a code.

use serde_json::Value;

use crate::{Analysis, Schemas, TextRange, did_you_mean, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: TextRange,
    /// Stable, for code actions and tests: `syntax`, `unknown-type`, `unknown-input`,
    /// `missing-input`, `wrong-type`, `unknown-resource`, `unknown-output`.
    pub code: &'static str,
    pub message: String,
    /// The replacement a quick fix would put at `range`, when there is an obvious one.
    pub suggestion: Option<String>,
}

impl Analysis {
    pub fn diagnostics(&self, schemas: &Schemas) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        let end = self.root().text_range().end();
        for error in self.parse_errors() {
            let range = match error {
                rnix::ParseError::Unexpected(range)
                | rnix::ParseError::UnexpectedExtra(range)
                | rnix::ParseError::UnexpectedWanted(_, range, _)
                | rnix::ParseError::UnexpectedDoubleBind(range) => *range,
                _ => TextRange::empty(end),
            };
            found.push(Diagnostic {
                range,
                code: "syntax",
                message: error.to_string(),
                suggestion: None,
            });
        }
        let known_providers: Vec<&str> = schemas.providers().collect();
        for decl in &self.index.resources {
            let Some((type_name, type_range)) = &decl.type_name else {
                continue;
            };
            let Some(description) = schemas.types.get(type_name) else {
                // Only a provider whose types are known can say a type does not exist.
                let provider = type_name
                    .split_once('.')
                    .map_or(type_name.as_str(), |(p, _)| p);
                if known_providers.contains(&provider) {
                    let suggestion =
                        did_you_mean(type_name, schemas.types.keys().map(String::as_str));
                    found.push(Diagnostic {
                        range: *type_range,
                        code: "unknown-type",
                        message: match suggestion {
                            Some(close) => format!(
                                "unknown resource type `{type_name}` (did you mean `{close}`?)"
                            ),
                            None => format!("unknown resource type `{type_name}`"),
                        },
                        suggestion: suggestion.map(|close| format!("\"{close}\"")),
                    });
                }
                continue;
            };
            let properties = description
                .inputs
                .get("properties")
                .and_then(Value::as_object);
            let closed =
                description.inputs.get("additionalProperties") == Some(&Value::Bool(false));
            for input in &decl.inputs {
                match properties.and_then(|p| p.get(&input.name)) {
                    None if closed => {
                        let suggestion = did_you_mean(
                            &input.name,
                            properties
                                .into_iter()
                                .flat_map(|p| p.keys().map(String::as_str)),
                        );
                        found.push(Diagnostic {
                            range: input.range,
                            code: "unknown-input",
                            message: match suggestion {
                                Some(close) => format!(
                                    "`{type_name}` has no input `{}` (did you mean `{close}`?)",
                                    input.name
                                ),
                                None => format!("`{type_name}` has no input `{}`", input.name),
                            },
                            suggestion: suggestion.map(str::to_owned),
                        });
                    }
                    Some(schema) => {
                        let expected = schema_type(schema);
                        if let Some(literal) = input.literal
                            && !expected.is_empty()
                            && !expected.contains(&literal)
                            && !(literal == "integer" && expected.contains(&"number"))
                        {
                            found.push(Diagnostic {
                                range: input.value_range,
                                code: "wrong-type",
                                message: format!(
                                    "input `{}` must be {}, not {literal}",
                                    input.name,
                                    expected.join(" or ")
                                ),
                                suggestion: None,
                            });
                        }
                    }
                    None => {}
                }
            }
            if !decl.inputs_open {
                let required = description.inputs.get("required").and_then(Value::as_array);
                let missing: Vec<&str> = required
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|name| !decl.inputs.iter().any(|i| i.name == *name))
                    .collect();
                if !missing.is_empty() {
                    let range = decl
                        .inputs_set
                        .as_ref()
                        .map_or(*type_range, |set| set.range);
                    found.push(Diagnostic {
                        range,
                        code: "missing-input",
                        message: format!(
                            "`{type_name}` needs {} {}",
                            if missing.len() == 1 {
                                "input"
                            } else {
                                "inputs"
                            },
                            missing
                                .iter()
                                .map(|m| format!("`{m}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        suggestion: None,
                    });
                }
            }
        }
        if !self.index.resources.is_empty() {
            for reference in &self.index.references {
                let Some(decl) = self.index.resource(&reference.resource) else {
                    let suggestion = did_you_mean(
                        &reference.resource,
                        self.index.resources.iter().map(|r| r.name.as_str()),
                    );
                    found.push(Diagnostic {
                        range: reference.resource_range,
                        code: "unknown-resource",
                        message: match suggestion {
                            Some(close) => format!(
                                "there is no resource `{}` (did you mean `{close}`?)",
                                reference.resource
                            ),
                            None => format!("there is no resource `{}`", reference.resource),
                        },
                        suggestion: suggestion.map(str::to_owned),
                    });
                    continue;
                };
                let Some((output, range)) = &reference.output else {
                    continue;
                };
                let outputs = decl
                    .type_name
                    .as_ref()
                    .and_then(|(t, _)| schemas.types.get(t))
                    .and_then(|d| d.outputs.get("properties"))
                    .and_then(Value::as_object);
                if let Some(outputs) = outputs
                    && !outputs.contains_key(output)
                {
                    let suggestion = did_you_mean(output, outputs.keys().map(String::as_str));
                    found.push(Diagnostic {
                        range: *range,
                        code: "unknown-output",
                        message: match suggestion {
                            Some(close) => format!(
                                "resource `{}` has no output `{output}` (did you mean `{close}`?)",
                                decl.name
                            ),
                            None => format!("resource `{}` has no output `{output}`", decl.name),
                        },
                        suggestion: suggestion.map(str::to_owned),
                    });
                }
            }
        }
        found.sort_by_key(|d| (d.range.start(), d.range.end()));
        found
    }
}
