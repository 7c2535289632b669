//! Renders [`crate::lsp_ext`] as TypeScript for the VS Code extension, from the JSON Schema
//! of its types (schemars), and checks that `editors/vscode/src/lsp_ext.ts` is exactly
//! that; `UPDATE_EXPECT=1` rewrites the file instead.

use std::fmt::Write;

use lsp_types::notification::Notification;
use lsp_types::request::Request;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

use super::*;

const HEADER: &str = "\
// NixOps4's additions to LSP, as nixops4-lsp speaks them: generated from
// lsp/server/src/lsp_ext.rs by its test (`cargo test -p nixops4-lsp lsp_ext`). Do not edit;
// change the Rust types and run the test with UPDATE_EXPECT=1.
import * as lc from 'vscode-languageclient/node';
";

/// The TypeScript name of a type's schema.
fn name_of(schema: &Value) -> String {
    ty(schema)
}

fn request<R: Request>(generator: &mut SchemaGenerator) -> String
where
    R::Params: JsonSchema,
    R::Result: JsonSchema,
{
    let params = name_of(&generator.subschema_for::<R::Params>().to_value());
    let result = name_of(&generator.subschema_for::<R::Result>().to_value());
    format!(
        "export const {} = new lc.RequestType<{params}, {result}, void>('{}');\n",
        short(R::METHOD),
        R::METHOD
    )
}

fn notification<N: Notification>(generator: &mut SchemaGenerator) -> String
where
    N::Params: JsonSchema,
{
    let params = name_of(&generator.subschema_for::<N::Params>().to_value());
    format!(
        "export const {} = new lc.NotificationType<{params}>('{}');\n",
        short(N::METHOD),
        N::METHOD
    )
}

/// `nixops4/planChanged` → `planChanged`.
fn short(name: &str) -> &str {
    name.rsplit(['/', '.']).next().unwrap_or(name)
}

fn result_of(command: Command, generator: &mut SchemaGenerator) -> Value {
    match command {
        Command::Apply => generator.subschema_for::<ApplyResult>(),
        Command::Destroy => generator.subschema_for::<DestroyResult>(),
        Command::Refresh => generator.subschema_for::<RefreshResult>(),
        Command::RunOperation => generator.subschema_for::<OperationResult>(),
        Command::Plan => generator.subschema_for::<PlanResult>(),
        Command::RunScript => generator.subschema_for::<ScriptResult>(),
    }
    .to_value()
}

fn render() -> String {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut out = String::from(HEADER);
    out.push('\n');
    out.push_str(&request::<PlanRequest>(&mut generator));
    out.push_str(&request::<DocumentTextRequest>(&mut generator));
    out.push_str(&notification::<PlanChanged>(&mut generator));
    out.push_str(
        "\n/** The commands of `workspace/executeCommand`; each takes one `CommandArguments`. */\nexport const commands = {\n",
    );
    for command in Command::ALL {
        let _ = writeln!(out, "  {}: '{}',", short(command.name()), command.name());
    }
    out.push_str(
        "} as const;\n\n/** What each command returns. */\nexport interface CommandResults {\n",
    );
    for command in Command::ALL {
        let result = ty(&result_of(command, &mut generator));
        let _ = writeln!(out, "  '{}': {result};", command.name());
    }
    out.push_str("}\n");
    let _ = generator.subschema_for::<CommandArguments>();
    for (name, schema) in generator.definitions() {
        out.push('\n');
        out.push_str(&definition(name, schema));
    }
    out
}

fn doc(description: Option<&Value>, indent: &str) -> String {
    let Some(text) = description.and_then(Value::as_str) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [one] => format!("{indent}/** {one} */\n"),
        many => {
            let mut out = format!("{indent}/**\n");
            for line in many {
                let _ = writeln!(
                    out,
                    "{indent} *{}{line}",
                    if line.is_empty() { "" } else { " " }
                );
            }
            out + &format!("{indent} */\n")
        }
    }
}

fn definition(name: &str, schema: &Value) -> String {
    let description = schema.get("description");
    match schema.get("properties").and_then(Value::as_object) {
        Some(properties) => {
            let mut out = doc(description, "");
            let _ = writeln!(out, "export interface {name} {{");
            out.push_str(&members(properties, schema.get("required"), "  "));
            out + "}\n"
        }
        None => format!(
            "{}export type {name} = {};\n",
            doc(description, ""),
            ty(schema)
        ),
    }
}

fn members(properties: &Map<String, Value>, required: Option<&Value>, indent: &str) -> String {
    let required: Vec<&str> = required
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::new();
    for (property, schema) in properties {
        out.push_str(&doc(schema.get("description"), indent));
        let optional = if required.contains(&property.as_str()) {
            ""
        } else {
            "?"
        };
        let _ = writeln!(out, "{indent}{property}{optional}: {};", ty(schema));
    }
    out
}

/// A schema as a TypeScript type.
fn ty(schema: &Value) -> String {
    let Some(object) = schema.as_object() else {
        return "unknown".into();
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(alternatives) = object.get("anyOf").or(object.get("oneOf")) {
        let types: Vec<String> = alternatives
            .as_array()
            .into_iter()
            .flatten()
            .map(ty)
            .collect();
        return union(types);
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(literal).collect());
    }
    if let Some(value) = object.get("const") {
        return literal(value);
    }
    match object.get("type") {
        Some(Value::String(kind)) => single(kind, object),
        Some(Value::Array(kinds)) => union(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .map(|kind| single(kind, object))
                .collect(),
        ),
        _ => "unknown".into(),
    }
}

fn single(kind: &str, object: &Map<String, Value>) -> String {
    match kind {
        "string" => "string".into(),
        "integer" | "number" => "number".into(),
        "boolean" => "boolean".into(),
        "null" => "null".into(),
        "array" => match object.get("prefixItems").and_then(Value::as_array) {
            Some(items) => format!("[{}]", items.iter().map(ty).collect::<Vec<_>>().join(", ")),
            None => {
                let item = object.get("items").map_or("unknown".into(), ty);
                if item.contains(" | ") {
                    format!("({item})[]")
                } else {
                    format!("{item}[]")
                }
            }
        },
        "object" => match object.get("properties").and_then(Value::as_object) {
            Some(properties) => {
                let fields = members(properties, object.get("required"), "");
                let fields = fields.trim_end().trim_end_matches(';').replace('\n', " ");
                format!("{{ {fields} }}")
            }
            None => {
                let values = object
                    .get("additionalProperties")
                    .map_or("unknown".into(), ty);
                format!("Record<string, {values}>")
            }
        },
        _ => "unknown".into(),
    }
}

fn union(mut types: Vec<String>) -> String {
    types.dedup();
    if types.iter().any(|t| t == "unknown") {
        return "unknown".into();
    }
    types.join(" | ")
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

#[test]
fn lsp_ext_ts_is_generated_from_these_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../editors/vscode/src/lsp_ext.ts");
    let rendered = render();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "{} differs from what lsp/server/src/lsp_ext.rs says; run `UPDATE_EXPECT=1 cargo test -p nixops4-lsp lsp_ext` to regenerate it. It should read:\n{rendered}",
        path.display()
    );
}
