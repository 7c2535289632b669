//! Hover and what a position names: documentation from the providers' schemas, the
//! values the state last recorded (secrets never shown), and the resource or output under
//! the cursor, for definition, references and rename.

use serde_json::Value;

pub use crate::index::ScopeId;
use crate::index::{DeclId, Reference, ResourceDecl};
use crate::{Analysis, Recorded, Schemas, TextRange, TextSize, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoverInfo {
    pub range: TextRange,
    pub markdown: String,
}

/// A resource, or one of its outputs, as named at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scope: ScopeId,
    pub resource: String,
    pub output: Option<String>,
    /// The range of the name under the cursor.
    pub range: TextRange,
}

/// How the server passes a recorded value made from a secret.
const SENSITIVE: &str = "(sensitive)";

/// Longest value shown in a hover, in characters.
const SHOWN_VALUE_LIMIT: usize = 200;

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

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN_VALUE_LIMIT {
        return text;
    }
    let cut: String = text.chars().take(SHOWN_VALUE_LIMIT).collect();
    format!("{cut}…")
}

impl Analysis {
    /// `others`: the deployment's other files, where a top-level reference this file does
    /// not declare may be declared.
    pub fn hover(
        &self,
        offset: TextSize,
        schemas: &Schemas,
        recorded: &Recorded,
        others: &[&Analysis],
    ) -> Option<HoverInfo> {
        // Typed declarations come last and have no name, so `id` is a named one's where a
        // name is hovered.
        let around = self.index.declarations().enumerate();
        for (id, decl) in around.filter(|(_, decl)| decl.spans(offset)) {
            let description = self.description(decl, schemas);
            if let (Some((_, range)), Some((type_name, description))) =
                (decl.type_name(), description)
                && contains(range, offset)
            {
                return Some(HoverInfo {
                    range,
                    markdown: format!("**{type_name}**\n\n{}", description.description),
                });
            }
            if let Some(range) = decl.name_ranges().find(|r| contains(*r, offset)) {
                return Some(HoverInfo {
                    range,
                    markdown: self.resource_doc(id, schemas, recorded),
                });
            }
            for input in decl.inputs() {
                if contains(input.range, offset)
                    && let Some((_, description)) = description
                    && let Some(schema) = description
                        .inputs
                        .get("properties")
                        .and_then(|p| p.get(input.name))
                {
                    let required = description
                        .inputs
                        .get("required")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|n| n == input.name));
                    let mut notes = Vec::new();
                    if required {
                        notes.push("required");
                    }
                    if description
                        .replace_on_change
                        .iter()
                        .any(|n| n == input.name)
                    {
                        notes.push("changing it replaces the resource");
                    }
                    let mut markdown = property_doc(input.name, schema, &notes.join(", "));
                    // A typed declaration has no name, so no record.
                    let named = id < self.index.resources.len();
                    if let Some(value) = named
                        .then(|| recorded.get(&self.index.path(id)))
                        .flatten()
                        .and_then(|r| r.inputs.get(input.name))
                    {
                        markdown.push_str("\n\n");
                        markdown.push_str(&if value == SENSITIVE {
                            "Last recorded value: *(sensitive: made from a secret, not shown)*"
                                .to_owned()
                        } else {
                            format!("Last recorded value: `{}`", shown(value))
                        });
                    }
                    return Some(HoverInfo {
                        range: input.range,
                        markdown,
                    });
                }
            }
        }
        for reference in &self.index.references {
            let Some((owner, id)) = self.declaration_of(reference, others) else {
                continue;
            };
            if contains(reference.resource_range, offset) {
                return Some(HoverInfo {
                    range: reference.resource_range,
                    markdown: owner.resource_doc(id, schemas, recorded),
                });
            }
            let decl = &owner.index.resources[id];
            if let Some((output, range)) = &reference.output
                && contains(*range, offset)
                && let Some((_, description)) = owner.description(decl, schemas)
                && let Some(schema) = description
                    .outputs
                    .get("properties")
                    .and_then(|p| p.get(&**output))
            {
                let secret = description.secret_outputs.iter().any(|s| **s == **output);
                let mut markdown = property_doc(output, schema, if secret { "secret" } else { "" });
                if let Some(value) = recorded
                    .get(&owner.index.path(id))
                    .and_then(|r| r.outputs.get(&**output))
                {
                    markdown.push_str("\n\n");
                    markdown.push_str(&if secret {
                        "Last recorded value: *(secret, not shown)*".to_owned()
                    } else {
                        format!("Last recorded value: `{}`", shown(value))
                    });
                }
                return Some(HoverInfo {
                    range: *range,
                    markdown,
                });
            }
        }
        None
    }

    /// The declaration a reference names: in this file, else, for a top-level reference,
    /// in the first of `others` that declares it at top level.
    fn declaration_of<'a>(
        &'a self,
        reference: &Reference,
        others: &[&'a Analysis],
    ) -> Option<(&'a Analysis, DeclId)> {
        if let Some(id) = self.index.resolve(reference) {
            return Some((self, id));
        }
        if !self.index.is_top_level(reference.scope) {
            return None;
        }
        others.iter().find_map(|other| {
            let declared = &other.index.resources;
            let id = (0..declared.len()).find(|id| {
                *declared[*id].name == *reference.resource
                    && other.index.is_top_level(declared[*id].scope)
            })?;
            Some((*other, id))
        })
    }

    /// A resource's type and its last recorded outputs. Values are shown only when the
    /// provider describes the type, since only then is it known which are secret.
    fn resource_doc(&self, id: DeclId, schemas: &Schemas, recorded: &Recorded) -> String {
        let decl = &self.index.resources[id];
        let path = self.index.path(id);
        if decl.nested.is_some() {
            return format!("nested deployment **{}**", path.join("."));
        }
        let type_name = decl.type_name().map_or("(type not known)", |(t, _)| t);
        let mut text = format!("resource **{}** `{type_name}`", path.join("."));
        let Some(outputs) = recorded.get(&path).map(|r| &r.outputs) else {
            return text;
        };
        match self.description(decl, schemas) {
            Some((_, description)) => {
                text.push_str("\n\nLast recorded outputs:");
                for (name, value) in outputs {
                    if description.secret_outputs.contains(name) {
                        text.push_str(&format!("\n- `{name}`: *(secret, not shown)*"));
                    } else {
                        text.push_str(&format!("\n- `{name}`: `{}`", shown(value)));
                    }
                }
            }
            None => text.push_str(
                "\n\nRecorded in state; values are shown once its provider describes which are secret.",
            ),
        }
        text
    }

    /// The resource or output named at `offset`: in a declaration's name, or in a reference.
    pub fn target(&self, offset: TextSize) -> Option<Target> {
        for decl in self.index.resources.iter().filter(|d| d.spans(offset)) {
            if let Some(range) = decl.name_ranges().find(|r| contains(*r, offset)) {
                return Some(Target {
                    scope: decl.scope,
                    resource: decl.name.clone(),
                    output: None,
                    range,
                });
            }
        }
        self.index.references.iter().find_map(|reference| {
            let target = |output: Option<String>, range| Target {
                scope: reference.scope,
                resource: reference.resource.to_string(),
                output,
                range,
            };
            if contains(reference.resource_range, offset) {
                return Some(target(None, reference.resource_range));
            }
            match &reference.output {
                Some((output, range)) if contains(*range, offset) => {
                    Some(target(Some(output.to_string()), *range))
                }
                _ => None,
            }
        })
    }

    /// The declaration of a resource in this file.
    pub(crate) fn declaration(&self, scope: ScopeId, name: &str) -> Option<&ResourceDecl> {
        self.index
            .find(scope, name)
            .map(|id| &self.index.resources[id])
    }

    /// Where this file writes a resource's name (declarations and references in `scope`),
    /// or, for an output, where references name that output.
    pub fn occurrences(
        &self,
        scope: ScopeId,
        resource: &str,
        output: Option<&str>,
    ) -> Vec<TextRange> {
        let mut ranges = Vec::new();
        if output.is_none()
            && let Some(decl) = self.declaration(scope, resource)
        {
            ranges.extend(decl.name_ranges());
        }
        for reference in &self.index.references {
            if reference.scope != scope || *reference.resource != *resource {
                continue;
            }
            match (output, &reference.output) {
                (None, _) => ranges.push(reference.resource_range),
                (Some(wanted), Some((named, range))) if *wanted == **named => ranges.push(*range),
                _ => {}
            }
        }
        ranges.sort_by_key(|r| r.start());
        ranges
    }
}

#[cfg(test)]
mod tests {
    use crate::fixture::Fixture;

    /// The hover at the cursor: the hovered text, then the markdown.
    fn hover(fixture: &str) -> String {
        let fixture = Fixture::parse(fixture);
        match fixture.analysis().hover(
            fixture.offset(),
            &fixture.schemas,
            &fixture.recorded,
            &fixture.others(),
        ) {
            Some(info) => format!("{}\n---\n{}", fixture.range(info.range), info.markdown),
            None => "(none)".to_owned(),
        }
    }

    #[test]
    fn a_resource_another_module_declares() {
        insta::assert_snapshot!(hover(&crate::fixture::pixelfed_modules(r#"
{ config, lib, resources, ... }: {
  resources = lib.mapAttrs' (name: customer: lib.nameValuePair "pixelfed-${name}" {
    type = "local.file";
    inputs = { name = "pixelfed-${name}.conf"; contents = resources.sshk$0eypair.value; };
  }) config.customers;
}"#)), @"
        5:69 `sshkeypair`
        ---
        resource **sshkeypair** `local.memo`
        ");
    }

    #[test]
    fn an_input_of_a_generated_resource() {
        insta::assert_snapshot!(hover(&crate::fixture::pixelfed_modules(r#"
{ config, lib, ... }: {
  resources = lib.mapAttrs' (name: customer: lib.nameValuePair "pixelfed-${name}" {
    type = "local.file";
    inputs = { na$0me = "pixelfed-${name}.conf"; contents = customer.domain; };
  }) config.customers;
}"#)), @"
        5:16 `name`
        ---
        **name** `string` (required, changing it replaces the resource)

        Path of the file. A relative path is relative to the directory NixOps4 runs in.
        Missing parent directories are created. Changing it replaces the resource: the new
        file is written and the old one deleted.
        ");
    }

    /// What the cursor names, then every place this file names it.
    fn target(fixture: &str) -> String {
        let fixture = Fixture::parse(fixture);
        let analysis = fixture.analysis();
        let Some(target) = analysis.target(fixture.offset()) else {
            return "(none)".to_owned();
        };
        let mut lines = vec![format!(
            "{} {:?} at {}",
            target.resource,
            target.output,
            fixture.range(target.range)
        )];
        lines.extend(
            analysis
                .occurrences(target.scope, &target.resource, target.output.as_deref())
                .into_iter()
                .map(|range| format!("  {}", fixture.range(range))),
        );
        lines.join("\n")
    }

    const VAULT: &str = r#"
#- provider vault
{ "key": {
    "description": "A key.",
    "inputs": { "type": "object", "required": ["algorithm"], "properties": {
      "algorithm": { "type": "string", "description": "The algorithm." } } },
    "outputs": { "type": "object", "properties": { "public": { "type": "string" }, "private": { "type": "string" } } },
    "secretOutputs": ["private"],
    "replaceOnChange": ["algorithm"] } }
#- recorded
{ "k": { "public": "ssh-rsa AAAA", "private": "TOP-SECRET-VALUE" } }
"#;

    /// A deployment with a key whose outputs the state recorded.
    fn with_key(file: &str) -> String {
        format!("#- /flake.nix\n{file}{VAULT}")
    }

    #[test]
    fn a_known_output_past_unknown_references() {
        insta::assert_snapshot!(hover(r#"
            { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
              resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.nope.x; }; };
              resources.b = { type = "local.exec"; inputs.executable = resources.a.sha$0256; };
            }; }; }
        "#), @"
        3:72 `sha256`
        ---
        **sha256** `string`

        SHA-256 of the contents, lowercase hex.
        ");
    }

    #[test]
    fn a_recorded_output_shows_its_value() {
        let hovered = hover(&with_key(
            r#"{ resources, ... }: { resources.k.type = "vault.key"; x = resources.k.pub$0lic; }"#,
        ));
        insta::assert_snapshot!(hovered, @r#"
        1:71 `public`
        ---
        **public** `string`

        Last recorded value: `"ssh-rsa AAAA"`
        "#);
    }

    #[test]
    fn a_secret_output_never_shows_its_value() {
        let hovered = hover(&with_key(
            r#"{ resources, ... }: { resources.k.type = "vault.key"; x = resources.k.priv$0ate; }"#,
        ));
        assert!(!hovered.contains("TOP-SECRET"), "{hovered}");
        insta::assert_snapshot!(hovered, @"
        1:71 `private`
        ---
        **private** `string` (secret)

        Last recorded value: *(secret, not shown)*
        ");
    }

    #[test]
    fn a_resource_shows_its_outputs_but_not_its_secrets() {
        let hovered = hover(&with_key(
            r#"{ resources, ... }: { resources.k.type = "vault.key"; x = resources.$0k.public; }"#,
        ));
        assert!(!hovered.contains("TOP-SECRET"), "{hovered}");
        insta::assert_snapshot!(hovered, @r#"
        1:69 `k`
        ---
        resource **k** `vault.key`

        Last recorded outputs:
        - `private`: *(secret, not shown)*
        - `public`: `"ssh-rsa AAAA"`
        "#);
    }

    #[test]
    fn an_input_shows_its_recorded_value_unless_it_was_made_from_a_secret() {
        let fixture = |cursor_in: &str| {
            let file = r#"{ resources, ... }: { resources.k = { type = "vault.key"; inputs = { algorithm = "ed25519"; }; }; }"#;
            format!(
                "#- /flake.nix\n{}{VAULT}#- recorded inputs\n{}\n",
                file.replace("algorithm =", cursor_in),
                r#"{ "k": { "algorithm": "(sensitive)" } }"#
            )
        };
        insta::assert_snapshot!(hover(&fixture("algo$0rithm =")), @"
        1:70 `algorithm`
        ---
        **algorithm** `string` (required, changing it replaces the resource)

        The algorithm.

        Last recorded value: *(sensitive: made from a secret, not shown)*
        ");
        let plain = fixture("algo$0rithm =").replace(r#""(sensitive)""#, r#""ed25519""#);
        assert!(
            hover(&plain).ends_with("Last recorded value: `\"ed25519\"`"),
            "{}",
            hover(&plain)
        );
    }

    #[test]
    fn no_values_of_a_type_no_provider_describes() {
        // None is known not to be secret.
        let hovered = hover(
            r#"
            #- /flake.nix
            { resources, ... }: { resources.k = { type = "other.key"; }; x = resources.$0k.token; }
            #- recorded
            { "k": { "token": "TOP-SECRET" } }
        "#,
        );
        assert!(!hovered.contains("TOP-SECRET"), "{hovered}");
        insta::assert_snapshot!(hovered, @"
        1:76 `k`
        ---
        resource **k** `other.key`

        Recorded in state; values are shown once its provider describes which are secret.
        ");
    }

    #[test]
    fn a_type_shows_its_description() {
        insta::assert_snapshot!(hover(&with_key(
            r#"{ resources, ... }: { resources.k.type = "vault$0.key"; }"#
        )), @r#"
        1:42 `"vault.key"`
        ---
        **vault.key**

        A key.
        "#);
    }

    #[test]
    fn an_input_says_required_and_replacing() {
        insta::assert_snapshot!(hover(&with_key(
            r#"{ resources, ... }: { resources.k = { type = "vault.key"; inputs.algo$0rithm = "rsa"; }; }"#
        )), @"
        1:66 `algorithm`
        ---
        **algorithm** `string` (required, changing it replaces the resource)

        The algorithm.
        ");
    }

    #[test]
    fn a_resource_of_a_nested_deployment_by_its_path() {
        insta::assert_snapshot!(hover(r#"
            { resources, ... }: { resources.host = lib.nested ({ resources, ... }: {
              resources.key.type = "local.memo";
              x = resources.k$0ey;
            }); }
        "#), @"
        3:17 `key`
        ---
        resource **host.key** `local.memo`
        ");
    }

    #[test]
    fn a_nested_deployment_says_so() {
        insta::assert_snapshot!(hover(r#"
            { resources, ... }: { resources.h$0ost = lib.nested ({ resources, ... }: { }); }
        "#), @"
        1:33 `host`
        ---
        nested deployment **host**
        ");
    }

    #[test]
    fn a_declared_name_and_its_references() {
        insta::assert_snapshot!(target(r#"
            { resources, ... }: {
              resources.a$0.type = "local.memo";
              resources.a.inputs.initialize_with = 1;
              resources.b.inputs.initialize_with = resources.a.value;
            }
        "#), @"
        a None at 2:13 `a`
          2:13 `a`
          3:13 `a`
          4:50 `a`
        ");
    }

    #[test]
    fn an_output_and_where_it_is_named() {
        insta::assert_snapshot!(target(r#"
            { resources, ... }: {
              resources.a.type = "local.memo";
              x = [ resources.a.value resources.a.val$0ue resources.a.other ];
            }
        "#), @r#"
        a Some("value") at 3:39 `value`
          3:21 `value`
          3:39 `value`
        "#);
    }

    #[test]
    fn the_same_name_in_another_scope_is_another_resource() {
        insta::assert_snapshot!(target(r#"
            { resources, ... }: {
              resources.a.type = "local.memo";
              resources.n = lib.nested ({ resources, ... }: { resources.a.type = "local.memo"; x = resources.$0a; });
              y = resources.a;
            }
        "#), @"
        a None at 3:98 `a`
          3:61 `a`
          3:98 `a`
        ");
    }

    #[test]
    fn nothing_named_elsewhere() {
        insta::assert_snapshot!(target("{ resources, ... }: { x$0 = 1; }"), @"(none)");
    }

    const MACHINE: &str = r#"
#- /flake.nix
{ outputs = { self }: let nixops4 = import ./lib.nix; in { nixops4Deployments.default = { resources, ... }: {
  resources.we$0b = nixops4.lib.nixos {
    ssh = { host = "web"; privateKey = resources.key.privateKey; hostPublicKey = "ssh-ed25519 AAAA"; };
    nixpkgs = ./nixpkgs;
    module = ./web.nix;
  };
}; }; }
#- provider ssh
{ "nixos": {
    "inputs": { "type": "object", "required": ["ssh", "system"], "properties": {
      "ssh": { "type": "object" }, "system": { "type": "string" } } },
    "outputs": { "type": "object", "properties": { "system": { "type": "string" }, "generation": { "type": "integer" } } },
    "operations": {
      "rollback": { "description": "Back.", "arguments": {} },
      "reboot": { "description": "Reboot.", "arguments": {} } } } }
#- recorded
{ "web": { "system": "/nix/store/abc-nixos-system-web", "generation": 7 } }
"#;

    #[test]
    fn a_machine_of_the_nixos_helper_shows_its_deployed_system_and_generation() {
        let hovered = hover(MACHINE);
        assert!(
            hovered.contains("resource **web** `ssh.nixos`"),
            "{hovered}"
        );
        assert!(
            hovered.contains("- `system`: `\"/nix/store/abc-nixos-system-web\"`"),
            "{hovered}"
        );
        assert!(hovered.contains("- `generation`: `7`"), "{hovered}");
    }

    #[test]
    fn the_nixos_helper_offers_its_operations_and_takes_only_inputs() {
        let fixture = crate::fixture::Fixture::parse(MACHINE);
        let analysis = fixture.analysis();
        let resource = analysis.resource_named_at(fixture.offset()).unwrap();
        let operations: Vec<&String> = analysis
            .operations(&resource, &fixture.schemas)
            .keys()
            .collect();
        assert_eq!(operations, ["reboot", "rollback"]);
        // `nixpkgs` and `module` belong to the helper: no diagnostic calls them unknown inputs.
        let diagnostics = format!(
            "{:?}",
            analysis.diagnostics(&fixture.schemas, &Default::default())
        );
        assert!(!diagnostics.contains("nixpkgs"), "{diagnostics}");
        assert!(!diagnostics.contains("`system`"), "{diagnostics}");
    }
}
