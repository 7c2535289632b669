//! Test fixtures for the features' tests: one text holds the files, the cursor and the
//! schemas, so that no test counts offsets by hand (rust-analyzer's and nil's shape).
//!
//! ```text
//! #- /flake.nix
//! { resources, ... }: { resources.a = { type = "vault.key"; inputs = { al$0 }; }; }
//! #- /module.nix
//! ...
//! #- provider vault
//! { "key": { "inputs": { "type": "object", "properties": { ... } } } }
//! #- recorded
//! { "a": { "public": "ssh-rsa AAAA" } }
//! ```
//!
//! `$0` marks the cursor (one at most). A fixture without `#- /path` headers is one file,
//! `/flake.nix`. The schemas are the real local provider's plus each `#- provider <name>`
//! section: its resource types as `describe` gives them, `description` and `outputs`
//! optional. `#- recorded` is the state's outputs by resource path, dots between names;
//! `#- recorded inputs` its inputs, in the same form.
//! The common indentation of the fixture is removed. Test code only.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::workspace::{File, Location};
use crate::{Analysis, Recorded, Schemas, TextRange, TextSize};

const CURSOR: &str = "$0";

pub(crate) struct Fixture {
    files: Vec<(String, Analysis)>,
    pub(crate) schemas: Schemas,
    pub(crate) recorded: Recorded,
    /// The file the cursor is in, and where.
    cursor: Option<(usize, TextSize)>,
}

/// A recorded section: `{ "host.key": { "name": value } }` as properties by path.
fn by_path(text: &str) -> Vec<(Vec<String>, serde_json::Map<String, Value>)> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let by_path: serde_json::Map<String, Value> =
        serde_json::from_str(text).expect("recorded values as JSON");
    by_path
        .into_iter()
        .map(|(path, properties)| {
            let Value::Object(properties) = properties else {
                panic!("the recorded values of `{path}` as an object")
            };
            (path.split('.').map(str::to_owned).collect(), properties)
        })
        .collect()
}

impl Fixture {
    pub(crate) fn parse(fixture: &str) -> Fixture {
        let mut files: Vec<(String, String)> = Vec::new();
        let mut providers: Vec<(String, String)> = Vec::new();
        let mut recorded = String::new();
        let mut recorded_inputs = String::new();
        // Where the lines go: a file, a provider, or the recorded outputs or inputs.
        enum Section {
            File,
            Provider,
            Recorded,
            RecordedInputs,
        }
        let mut section = Section::File;
        for line in trim_indent(fixture).lines() {
            if let Some(header) = line.strip_prefix("#- ") {
                section = match header.trim().split_once(' ') {
                    None if header.starts_with('/') => {
                        files.push((header.trim().to_owned(), String::new()));
                        Section::File
                    }
                    None if header.trim() == "recorded" => Section::Recorded,
                    Some(("recorded", "inputs")) => Section::RecordedInputs,
                    Some(("provider", name)) => {
                        providers.push((name.trim().to_owned(), String::new()));
                        Section::Provider
                    }
                    _ => panic!("unknown fixture header `{line}`"),
                };
                continue;
            }
            let text = match section {
                Section::File => {
                    if files.is_empty() {
                        files.push(("/flake.nix".to_owned(), String::new()));
                    }
                    &mut files.last_mut().expect("a file").1
                }
                Section::Provider => &mut providers.last_mut().expect("a provider").1,
                Section::Recorded => &mut recorded,
                Section::RecordedInputs => &mut recorded_inputs,
            };
            text.push_str(line);
            text.push('\n');
        }
        let mut cursor = None;
        let files = files
            .into_iter()
            .enumerate()
            .map(|(n, (path, text))| {
                let pieces: Vec<&str> = text.split(CURSOR).collect();
                match pieces.len() {
                    1 => {}
                    2 if cursor.is_none() => {
                        cursor = Some((n, TextSize::from(pieces[0].len() as u32)));
                    }
                    _ => panic!("a fixture has one `{CURSOR}` cursor at most"),
                }
                (path, Analysis::new(&pieces.concat()))
            })
            .collect();
        let mut schemas = local_schemas().clone();
        for (name, types) in providers {
            schemas.add_provider(&name, &described(&name, &types));
        }
        let mut recorded_resources = Recorded::new();
        for (path, outputs) in by_path(&recorded) {
            recorded_resources.entry(path).or_default().outputs = outputs;
        }
        for (path, inputs) in by_path(&recorded_inputs) {
            recorded_resources.entry(path).or_default().inputs = inputs;
        }
        let recorded = recorded_resources;
        Fixture {
            files,
            schemas,
            recorded,
            cursor,
        }
    }

    /// The file with the cursor, else the first.
    fn current(&self) -> &(String, Analysis) {
        &self.files[self.cursor.map_or(0, |(file, _)| file)]
    }

    pub(crate) fn analysis(&self) -> &Analysis {
        &self.current().1
    }

    pub(crate) fn path(&self) -> &str {
        &self.current().0
    }

    pub(crate) fn text(&self) -> &str {
        self.analysis().text()
    }

    /// Where `$0` is.
    pub(crate) fn offset(&self) -> TextSize {
        self.cursor.expect("a `$0` cursor in the fixture").1
    }

    /// The files other than the cursor's.
    pub(crate) fn others(&self) -> Vec<&Analysis> {
        self.files
            .iter()
            .filter(|(path, _)| path != self.path())
            .map(|(_, analysis)| analysis)
            .collect()
    }

    /// Every file, for the workspace's questions.
    pub(crate) fn files(&self) -> Vec<File<'_>> {
        self.files
            .iter()
            .map(|(id, analysis)| File { id, analysis })
            .collect()
    }

    /// `/path:line:column `text``, 1-based.
    pub(crate) fn location(&self, location: &Location) -> String {
        let (_, analysis) = self
            .files
            .iter()
            .find(|(path, _)| *path == location.file)
            .expect("a file of the fixture");
        let at = show_range(analysis.text(), location.range);
        format!("{}:{at}", location.file)
    }

    /// `line:column `text`` of a range in the current file, 1-based.
    pub(crate) fn range(&self, range: TextRange) -> String {
        show_range(self.text(), range)
    }

    /// The text of a file after `edits` (of every file, by path).
    pub(crate) fn edited(&self, path: &str, edits: &[(Location, String)]) -> String {
        let (_, analysis) = self
            .files
            .iter()
            .find(|(p, _)| p == path)
            .expect("a file of the fixture");
        let edits: Vec<(TextRange, String)> = edits
            .iter()
            .filter(|(location, _)| location.file == path)
            .map(|(location, text)| (location.range, text.clone()))
            .collect();
        apply_edits(analysis.text(), &edits)
    }
}

/// The real local provider's schemas, as its binary's `describe` gives them.
pub(crate) fn local_schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut schemas = Schemas::default();
        schemas.add_provider("local", &nixops4_resources_local::provider().describe());
        schemas
    })
}

/// The nested deployment of the evaluator's tests, which Nix evaluates: the analysis
/// must read what Nix reads.
pub(crate) fn nested_deployment() -> String {
    std::fs::read_to_string(
        nixops4_tests::repository_root().join("tests/fixtures/eval/nested/flake.nix"),
    )
    .expect("the evaluator's nested fixture")
}

/// `text` with each range replaced (ranges of the original text, not overlapping).
pub(crate) fn apply_edits(text: &str, edits: &[(TextRange, String)]) -> String {
    let mut edits = edits.to_vec();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start()));
    let mut text = text.to_owned();
    for (range, replacement) in edits {
        text.replace_range(
            usize::from(range.start())..usize::from(range.end()),
            &replacement,
        );
    }
    text
}

/// `line:column `text``, 1-based, the column in characters.
fn show_range(text: &str, range: TextRange) -> String {
    let start = usize::from(range.start());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    format!("{line}:{column} `{}`", &text[range])
}

/// A provider's describe from its resource types as a fixture writes them.
fn described(name: &str, types: &str) -> nixops4_provider_protocol::DescribeResponse {
    let mut types: serde_json::Map<String, Value> =
        serde_json::from_str(types).expect("a provider's resource types as JSON");
    for description in types.values_mut() {
        let description = description.as_object_mut().expect("a resource type object");
        description.entry("description").or_insert(json!(""));
        description.entry("outputs").or_insert(json!({}));
    }
    let response = json!({
        "provider": { "name": name, "version": "0" },
        "description": "",
        "resourceTypes": types,
    });
    serde_json::from_value(response).expect("a provider's describe")
}

/// The fixture without its first empty line and its common indentation.
fn trim_indent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|line| line.get(indent..).unwrap_or_else(|| line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module-system deployment of issue 16, as a new user writes it: the flake hands
/// `nixops4.lib.moduleDeployment` its modules; `data-model.nix` declares the customers,
/// `deployment.nix` a key pair, and `applications/pixelfed.nix` (given here, with the
/// cursor) generates one resource per customer with `lib.mapAttrs'`.
pub(crate) fn pixelfed_modules(pixelfed: &str) -> String {
    format!(
        r#"
#- /flake.nix
{{
  inputs.nixops4.url = "path:/src/nixops4";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs = {{ self, nixops4, nixpkgs }}: {{
    nixops4Deployments.default = nixops4.lib.moduleDeployment {{
      lib = nixpkgs.lib;
      modules = [ ./data-model.nix ./deployment.nix ./applications/pixelfed.nix ];
    }};
  }};
}}
#- /data-model.nix
{{ lib, ... }}:
let inherit (lib) mkOption types; in
{{
  options.customers = mkOption {{
    type = types.attrsOf (types.submodule ./customer.nix);
    description = "The customers, by name.";
  }};
}}
#- /customer.nix
{{ lib, ... }}: {{
  options.domain = lib.mkOption {{ type = lib.types.str; description = "The customer's domain."; }};
}}
#- /deployment.nix
{{ resources, ... }}: {{
  resources.sshkeypair = {{ type = "local.memo"; inputs.initialize_with = "key"; }};
  customers.bob.domain = "bob.example.org";
}}
#- /applications/pixelfed.nix
{pixelfed}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_cursor_providers_and_recorded_outputs() {
        let fixture = Fixture::parse(
            r#"
            #- /a.nix
            { x = 1; }
            #- /b.nix
            { y = é$0; }
            #- provider vault
            { "key": { "inputs": {} } }
            #- recorded
            { "host.key": { "public": "p" } }
            "#,
        );
        assert_eq!(fixture.path(), "/b.nix");
        assert_eq!(fixture.text(), "{ y = é; }\n");
        assert_eq!(fixture.range(TextRange::empty(fixture.offset())), "1:8 ``");
        assert_eq!(fixture.files().len(), 2);
        assert!(fixture.schemas.types.contains_key("vault.key"));
        assert!(fixture.schemas.types.contains_key("local.file"));
        let path = vec!["host".to_owned(), "key".to_owned()];
        assert_eq!(fixture.recorded[&path].outputs["public"], "p");
    }

    #[test]
    fn one_file_without_a_header() {
        let fixture = Fixture::parse("{ a = 1; }");
        assert_eq!(fixture.path(), "/flake.nix");
        assert_eq!(fixture.text(), "{ a = 1; }\n");
    }
}
