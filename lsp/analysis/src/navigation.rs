//! Hover and go-to-definition: what is under the cursor, documented from the providers'
//! schemas, and where a referenced resource is declared.

use serde_json::Value;

use crate::{Analysis, Schemas, TextRange, TextSize, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoverInfo {
    pub range: TextRange,
    pub markdown: String,
}

fn contains(range: TextRange, offset: TextSize) -> bool {
    range.start() <= offset && offset <= range.end()
}

fn property_doc(name: &str, schema: &Value, note: &str) -> String {
    let types = schema_type(schema).join(" | ");
    let mut text = format!("**{name}**");
    if !types.is_empty() {
        text.push_str(&format!(" `{types}`"));
    }
    if !note.is_empty() {
        text.push_str(&format!(" ({note})"));
    }
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        text.push_str("\n\n");
        text.push_str(description);
    }
    text
}

impl Analysis {
    pub fn hover(&self, offset: TextSize, schemas: &Schemas) -> Option<HoverInfo> {
        for decl in &self.index.resources {
            let description = decl
                .type_name
                .as_ref()
                .and_then(|(t, _)| schemas.types.get(t).map(|d| (t, d)));
            if let (Some((_, range)), Some((type_name, description))) =
                (&decl.type_name, description)
                && contains(*range, offset)
            {
                return Some(HoverInfo {
                    range: *range,
                    markdown: format!("**{type_name}**\n\n{}", description.description),
                });
            }
            for input in &decl.inputs {
                if contains(input.range, offset)
                    && let Some((_, description)) = description
                    && let Some(schema) = description
                        .inputs
                        .get("properties")
                        .and_then(|p| p.get(&input.name))
                {
                    let required = description
                        .inputs
                        .get("required")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|n| n == input.name.as_str()));
                    let mut notes = Vec::new();
                    if required {
                        notes.push("required");
                    }
                    if description.replace_on_change.contains(&input.name) {
                        notes.push("changing it replaces the resource");
                    }
                    return Some(HoverInfo {
                        range: input.range,
                        markdown: property_doc(&input.name, schema, &notes.join(", ")),
                    });
                }
            }
        }
        for reference in &self.index.references {
            let Some(decl) = self.index.resource(&reference.resource) else {
                continue;
            };
            let description = decl
                .type_name
                .as_ref()
                .and_then(|(t, _)| schemas.types.get(t));
            if contains(reference.resource_range, offset) {
                let type_name = decl
                    .type_name
                    .as_ref()
                    .map_or("(type not known)", |(t, _)| t.as_str());
                return Some(HoverInfo {
                    range: reference.resource_range,
                    markdown: format!("resource **{}** `{type_name}`", decl.name),
                });
            }
            if let Some((output, range)) = &reference.output
                && contains(*range, offset)
                && let Some(description) = description
                && let Some(schema) = description
                    .outputs
                    .get("properties")
                    .and_then(|p| p.get(output))
            {
                let note = if description.secret_outputs.contains(output) {
                    "secret"
                } else {
                    ""
                };
                return Some(HoverInfo {
                    range: *range,
                    markdown: property_doc(output, schema, note),
                });
            }
        }
        None
    }

    /// Where the resource referenced at `offset` is declared.
    pub fn definition(&self, offset: TextSize) -> Option<TextRange> {
        let reference = self
            .index
            .references
            .iter()
            .find(|r| contains(r.resource_range, offset))?;
        Some(self.index.resource(&reference.resource)?.name_range)
    }
}
