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
            .position(|r| r.name_ranges.iter().any(|n| n.contains_inclusive(offset)))
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
            .filter(|r| {
                r.type_name
                    .as_ref()
                    .is_some_and(|(t, _)| t == "local.state_file")
            })
            .filter_map(|r| {
                r.inputs
                    .iter()
                    .find(|i| i.name == "name")?
                    .string_value
                    .as_deref()
            });
        match (named.next(), named.next()) {
            (Some(name), None) => Some(name),
            _ => None,
        }
    }

    fn declared(&self, id: DeclId) -> DeclaredResource {
        let decl = &self.index.resources[id];
        DeclaredResource {
            path: self.index.path(id),
            type_name: decl.type_name.as_ref().map(|(t, _)| t.clone()),
            name_range: decl.name_range,
        }
    }
}
