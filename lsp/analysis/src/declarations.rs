//! What a file declares, as the language server's evaluation-backed features need it: the
//! deployment it defines, its resources by path (for plan lenses and the actions on the
//! resource under the cursor), the custom operations of each, the providers it declares
//! (to ask them for their schemas) and the state file it names.
//!
//! The server asks these questions instead of walking the index, so the index can change
//! shape without the server noticing.

use std::collections::BTreeMap;

use nixops4_provider_protocol::OperationDescription;

use crate::index::DeclId;
use crate::{Analysis, Schemas, TextRange, TextSize};

/// A resource the file declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredResource {
    /// Its full path: `["host", "key"]` for `key` nested in `host`.
    pub path: Vec<String>,
    /// Its `type` when written as a string literal (`local.file`).
    pub type_name: Option<String>,
    /// Where its name is first written.
    pub name_range: TextRange,
}

/// A provider the file declares with `providers.<name> = { executable; args; }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredProvider {
    pub name: String,
    /// The `executable`, when written as a plain string.
    pub executable: Option<String>,
    /// The `args`, when written as a list of plain strings.
    pub args: Vec<String>,
}

impl Analysis {
    /// The name of the first `nixops4Deployments.<name>` the file defines.
    pub fn deployment_name(&self) -> Option<&str> {
        self.index.deployment.as_deref()
    }

    /// Every resource the file declares, in the order their names are first written.
    pub fn declared_resources(&self) -> Vec<DeclaredResource> {
        (0..self.index.resources.len())
            .map(|id| self.declared(id))
            .collect()
    }

    /// The resource declared at `path`, if this file declares it.
    pub fn declared_resource(&self, path: &[String]) -> Option<DeclaredResource> {
        (0..self.index.resources.len())
            .find(|id| self.index.path(*id) == path)
            .map(|id| self.declared(id))
    }

    /// The resource whose name is written at `offset` in one of its declarations.
    pub fn resource_named_at(&self, offset: TextSize) -> Option<DeclaredResource> {
        self.index
            .resources
            .iter()
            .position(|r| r.spans(offset) && r.name_ranges().any(|n| n.contains_inclusive(offset)))
            .map(|id| self.declared(id))
    }

    /// The custom operations the schema of a declared resource's type offers, by name.
    pub fn operations<'s>(
        &self,
        resource: &DeclaredResource,
        schemas: &'s Schemas,
    ) -> &'s BTreeMap<String, OperationDescription> {
        static NONE: BTreeMap<String, OperationDescription> = BTreeMap::new();
        resource
            .type_name
            .as_ref()
            .and_then(|t| schemas.types.get(t))
            .map_or(&NONE, |description| &description.operations)
    }

    /// The providers the file declares, in the order they are written.
    pub fn declared_providers(&self) -> Vec<DeclaredProvider> {
        self.index
            .providers
            .iter()
            .map(|p| DeclaredProvider {
                name: p.name.clone(),
                executable: p.executable.clone(),
                args: p.args.clone(),
            })
            .collect()
    }

    /// The file name that the deployment's one top-level `local.state_file` resource gives
    /// as a string literal `name`; `None` when there is no such resource, or several.
    pub fn state_file_name(&self) -> Option<&str> {
        let index = &self.index;
        let mut named = index
            .resources
            .iter()
            .filter(|r| index.is_top_level(r.scope))
            .filter(|r| r.type_name().is_some_and(|(t, _)| t == "local.state_file"))
            .filter_map(|r| r.inputs().find(|i| i.name == "name")?.string_value);
        match (named.next(), named.next()) {
            (Some(name), None) => Some(name),
            _ => None,
        }
    }

    fn declared(&self, id: DeclId) -> DeclaredResource {
        let decl = &self.index.resources[id];
        DeclaredResource {
            path: self.index.path(id),
            type_name: decl.type_name().map(|(t, _)| t.to_owned()),
            name_range: decl.name_range(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Analysis;
    use crate::fixture::{Fixture, nested_deployment};

    /// Every declared resource as `path `type` at line:column`, after the deployment.
    fn declared(text: &str) -> String {
        let fixture = Fixture::parse(text);
        let analysis = fixture.analysis();
        let mut lines = vec![format!("deployment {:?}", analysis.deployment_name())];
        lines.extend(analysis.declared_resources().into_iter().map(|resource| {
            format!(
                "{} {:?} at {}",
                resource.path.join("."),
                resource.type_name,
                fixture.range(resource.name_range)
            )
        }));
        lines.join("\n")
    }

    fn path(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_resources_of_the_evaluated_nested_deployment() {
        insta::assert_snapshot!(declared(&nested_deployment()), @r#"
        deployment Some("default")
        state Some("local.state_file") at 8:11 `state`
        ca Some("vault.ca") at 9:11 `ca`
        host None at 10:11 `host`
        release None at 17:11 `release`
        odd.name Some("local.memo") at 21:11 `"odd.name"`
        host.key Some("vault.key") at 13:15 `key`
        host.cert Some("local.file") at 14:15 `cert`
        release.build Some("local.exec") at 18:22 `"build"`
        release.publish Some("local.exec") at 19:22 `"publish"`
        "#);
    }

    #[test]
    fn a_module_defines_no_deployment() {
        insta::assert_snapshot!(declared(r#"
            { resources, ... }: { resources.a.type = "local.memo"; resources."b c" = { }; }
        "#), @r#"
        deployment None
        a Some("local.memo") at 1:33 `a`
        b c None at 1:66 `"b c"`
        "#);
    }

    #[test]
    fn one_resource_by_its_path() {
        let fixture = Fixture::parse(&nested_deployment());
        let analysis = fixture.analysis();
        let key = analysis
            .declared_resource(&path(&["host", "key"]))
            .expect("host.key");
        let shown = format!(
            "{:?} {:?} at {}",
            key.path,
            key.type_name,
            fixture.range(key.name_range)
        );
        insta::assert_snapshot!(shown, @r#"["host", "key"] Some("vault.key") at 13:15 `key`"#);
        assert_eq!(analysis.declared_resource(&path(&["key"])), None);
        assert_eq!(analysis.declared_resource(&[]), None);
    }

    #[test]
    fn the_resource_named_at_the_cursor_in_any_of_its_declarations() {
        let named_at = |fixture: &str| {
            let fixture = Fixture::parse(fixture);
            let resource = fixture.analysis().resource_named_at(fixture.offset());
            resource.map(|r| r.path.join("."))
        };
        let dotted = r#"{ resources, ... }: { resources.a.type = "local.memo"; resources.a$0.inputs.initialize_with = 1; }"#;
        assert_eq!(named_at(dotted).as_deref(), Some("a"));
        let nested = r#"{ resources, ... }: { resources.n = lib.nested ({ resources, ... }: { resources.$0k = { }; }); }"#;
        assert_eq!(named_at(nested).as_deref(), Some("n.k"));
        let reference = r#"{ resources, ... }: { resources.a = { }; x = resources.a$0; }"#;
        assert_eq!(named_at(reference), None);
    }

    #[test]
    fn operations_of_a_declared_type() {
        let fixture = Fixture::parse(
            r#"
            #- /flake.nix
            { resources, ... }: {
              resources.f.type = "local.file";
              resources.m.type = "local.memo";
              resources.v.type = "vault.key";
              resources.u.type = "unknown.type";
            }
            #- provider vault
            { "key": { "inputs": {}, "operations": {
                "rotate": { "description": "New key.", "arguments": {}, "destructive": true } } } }
        "#,
        );
        let analysis = fixture.analysis();
        let operations: Vec<String> = analysis
            .declared_resources()
            .iter()
            .map(|resource| {
                let names: Vec<&String> = analysis
                    .operations(resource, &fixture.schemas)
                    .keys()
                    .collect();
                format!("{}: {names:?}", resource.path.join("."))
            })
            .collect();
        insta::assert_snapshot!(operations.join("\n"), @r#"
        f: ["backup"]
        m: []
        v: ["rotate"]
        u: []
        "#);
    }

    #[test]
    fn providers_in_the_order_they_are_written() {
        let providers = Analysis::new(&nested_deployment()).declared_providers();
        insta::assert_snapshot!(format!("{providers:#?}"), @r#"
        [
            DeclaredProvider {
                name: "vault",
                executable: Some(
                    "/opt/vault-provider",
                ),
                args: [
                    "--quiet",
                ],
            },
            DeclaredProvider {
                name: "vault",
                executable: Some(
                    "/opt/other-vault",
                ),
                args: [],
            },
        ]
        "#);
    }

    fn state_file_name(text: &str) -> Option<String> {
        Analysis::new(text).state_file_name().map(str::to_owned)
    }

    #[test]
    fn the_one_top_level_state_file_names_the_state() {
        assert_eq!(
            state_file_name(&nested_deployment()).as_deref(),
            Some("deployment.state.jsonl")
        );
        let dotted = r#"{ resources, ... }: { resources.s.type = "local.state_file"; resources.s.inputs.name = "s.jsonl"; }"#;
        assert_eq!(state_file_name(dotted).as_deref(), Some("s.jsonl"));
    }

    #[test]
    fn no_state_file_name_when_it_cannot_be_told() {
        let none = r#"{ resources, ... }: { resources.m.type = "local.memo"; }"#;
        let several = r#"{ resources, ... }: {
          resources.s.type = "local.state_file"; resources.s.inputs.name = "s";
          resources.t.type = "local.state_file"; resources.t.inputs.name = "t";
        }"#;
        let computed = r#"{ resources, ... }: { resources.s = { type = "local.state_file"; inputs.name = "${x}"; }; }"#;
        let nested = r#"{ resources, ... }: { resources.n = lib.nested ({ resources, ... }: {
          resources.s = { type = "local.state_file"; inputs.name = "inner"; };
        }); }"#;
        for text in [none, several, computed, nested] {
            assert_eq!(state_file_name(text), None, "{text}");
        }
    }
}
