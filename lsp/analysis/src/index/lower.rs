//! Lowering: reads a syntax tree into the index's model. One preorder walk finds the
//! functions that open scopes, the entries that declare resources and providers, and the
//! references; a declaration read whole is skipped by the walk.
//!
//! Declarations whose syntax did not change since the previous version are not read
//! again: `cache` keeps what they said, by green-node identity.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::cache::{BodyCache, BodyFacts};
use super::model::{
    DeclId, Index, InputEntry, InputsSet, ProviderDecl, Reference, ResourceDecl, Said, ScopeId,
};
use crate::syntax::{
    StaticName, binds, literal_type, mentions, plain_string, static_names, strip_parens,
    takes_argument,
};

impl Index {
    /// Indexes a tree. `previous` holds what an earlier version's resource declarations
    /// said; those whose syntax is unchanged (the same green node) are not read again.
    /// Returns the index and what to give the next version.
    pub(crate) fn build(root: &SyntaxNode, previous: &BodyCache) -> (Index, BodyCache) {
        let mut builder = Builder::new(Index::of_file(root.text_range()), previous);
        let mut walk = root.preorder();
        while let Some(event) = walk.next() {
            let rowan::WalkEvent::Enter(node) = event else {
                continue;
            };
            match node.kind() {
                SyntaxKind::NODE_LAMBDA => {
                    builder.read_lambda(&ast::Lambda::cast(node).expect("a lambda"))
                }
                // A declaration read whole (from the cache or not) holds nothing more.
                SyntaxKind::NODE_ATTR_SET if builder.read_bodies.contains(&node.text_range()) => {
                    walk.skip_subtree();
                }
                SyntaxKind::NODE_ATTR_SET => {
                    builder.read_typed(&ast::AttrSet::cast(node).expect("a set"));
                }
                SyntaxKind::NODE_ATTRPATH_VALUE => {
                    let entry = ast::AttrpathValue::cast(node).expect("an entry");
                    // Most entries are inputs and the like: tell them apart without allocating.
                    if entry.attrpath().is_some_and(|path| {
                        mentions(&path, &["resources", "providers", "nixops4Deployments"])
                    }) {
                        builder.read_entry(&entry);
                    }
                }
                SyntaxKind::NODE_SELECT => {
                    let select = ast::Select::cast(node).expect("a select");
                    if let Some(parts) = reference_parts(&select) {
                        builder.add_reference(parts, select.syntax(), None);
                    }
                }
                _ => {}
            }
        }
        let mut index = builder.index;
        for decl in index.resources.iter_mut().chain(&mut index.typed) {
            decl.seal();
        }
        // In the order of the text, as edits keep them: a declaration read whole adds its
        // references before the walk reaches those of functions written earlier.
        index.references.sort_by_key(|r| r.resource_range.start());
        (index, builder.cache)
    }
}

pub(super) struct Builder<'a> {
    pub(super) index: Index,
    /// Lambdas that open a scope, by their range.
    lambda_scopes: FxHashMap<TextRange, ScopeId>,
    /// Lambdas given to `nested`/`mkSequence`, with the resource they are and whether
    /// they return `mkSequence`'s list of steps.
    nested_lambdas: FxHashMap<TextRange, (DeclId, bool)>,
    /// The expressions that make up each declaration, by range.
    bodies: FxHashMap<TextRange, DeclId>,
    pub(super) previous: &'a BodyCache,
    pub(super) cache: BodyCache,
    /// Declarations read whole, whose insides the walk skips.
    pub(super) read_bodies: FxHashSet<TextRange>,
    /// The scope a reference's base names, by innermost function and base.
    binder_memo: FxHashMap<(Option<TextRange>, String), Option<ScopeId>>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(index: Index, previous: &'a BodyCache) -> Builder<'a> {
        Builder {
            index,
            lambda_scopes: FxHashMap::default(),
            nested_lambdas: FxHashMap::default(),
            bodies: FxHashMap::default(),
            previous,
            cache: BodyCache::default(),
            read_bodies: FxHashSet::default(),
            binder_memo: FxHashMap::default(),
        }
    }

    fn read_lambda(&mut self, lambda: &ast::Lambda) {
        let range = lambda.syntax().text_range();
        let nested = self.nested_lambdas.get(&range).copied();
        let owner = nested.map(|(owner, _)| owner);
        let binds_resources = takes_argument(lambda, "resources");
        let is_deployment = lambda
            .syntax()
            .parent()
            .and_then(ast::AttrpathValue::cast)
            .and_then(|entry| entry.attrpath())
            .is_some_and(|path| {
                static_names(&path)
                    .iter()
                    .any(|(n, _)| n.as_deref() == Some("nixops4Deployments"))
            });
        if owner.is_some() || binds_resources || is_deployment {
            let scope = self.index.add_scope(owner, range);
            self.lambda_scopes.insert(range, scope);
            if let Some((owner, is_sequence)) = nested {
                self.index.resources[owner].nested = Some(scope);
                if is_sequence && let Some(ast::Expr::List(list)) = lambda.body().map(strip_parens)
                {
                    self.read_sequence(scope, &list);
                }
            }
        }
    }

    /// The innermost scope around a node.
    fn scope_of(&self, node: &SyntaxNode) -> ScopeId {
        scope_around(&self.lambda_scopes, node)
    }

    /// An entry whose path contains `resources` or `providers` declares them, unless it sits
    /// inside another declaration (`inputs.x.resources` is data).
    fn read_entry(&mut self, entry: &ast::AttrpathValue) {
        let Some(path) = entry.attrpath().map(|p| static_names(&p)) else {
            return;
        };
        if self.index.deployment.is_none()
            && let Some(at) = path
                .iter()
                .position(|(n, _)| n.as_deref() == Some("nixops4Deployments"))
            && let Some((Some(name), _)) = path.get(at + 1)
        {
            self.index.deployment = Some(name.clone());
        }
        let Some(at) = path
            .iter()
            .position(|(name, _)| matches!(name.as_deref(), Some("resources") | Some("providers")))
        else {
            return;
        };
        let declares = |names: &[StaticName]| {
            names.iter().any(|(n, _)| {
                matches!(
                    n.as_deref(),
                    Some("inputs") | Some("resources") | Some("providers")
                )
            })
        };
        let inside_declaration = declares(&path[..at])
            || entry
                .syntax()
                .ancestors()
                .skip(1)
                .take_while(|n| n.kind() != SyntaxKind::NODE_LAMBDA)
                .filter_map(ast::AttrpathValue::cast)
                .any(|outer| {
                    outer
                        .attrpath()
                        .is_some_and(|p| declares(&static_names(&p)))
                });
        if inside_declaration {
            return;
        }
        let Some(value) = entry.value() else { return };
        let scope = self.scope_of(entry.syntax());
        let is_providers = path[at].0.as_deref() == Some("providers");
        let rest = &path[at + 1..];
        let declare = |builder: &mut Builder<'_>,
                       name: &str,
                       range: TextRange,
                       inner_path: &[StaticName],
                       value: ast::Expr| {
            if is_providers {
                builder.read_provider(scope, name, range, inner_path, value);
            } else {
                builder.read_facts(scope, name, range, inner_path, value);
            }
        };
        match rest.first() {
            None => {
                if let ast::Expr::AttrSet(set) = value {
                    for inner in set.attrpath_values() {
                        let Some(inner_path) = inner.attrpath().map(|p| static_names(&p)) else {
                            continue;
                        };
                        let Some((Some(name), range)) = inner_path.first().cloned() else {
                            continue;
                        };
                        if let Some(inner_value) = inner.value() {
                            declare(self, &name, range, &inner_path[1..], inner_value);
                        }
                    }
                }
            }
            Some((Some(name), range)) => {
                let (name, range) = (name.clone(), *range);
                declare(self, &name, range, &rest[1..], value);
            }
            Some((None, _)) => {}
        }
    }

    /// What `value` at `path` (relative to resource `name`) says about the resource.
    fn read_facts(
        &mut self,
        scope: ScopeId,
        name: &str,
        range: TextRange,
        path: &[StaticName],
        value: ast::Expr,
    ) {
        let id = self.index.declare(scope, name, range);
        self.add_body(id, value.syntax().text_range());
        let segments: Vec<Option<&str>> = path.iter().map(|(n, _)| n.as_deref()).collect();
        match segments.as_slice() {
            [] => {
                self.index.resources[id].whole_ranges.push(range);
                self.read_whole(id, value);
            }
            [Some("type")] => self.read_type(id, &value),
            [Some("inputs")] => self.read_inputs(id, value),
            [Some("inputs"), Some(input), rest @ ..] => {
                self.add_input(id, (*input).to_owned(), path[1].1, &value, rest.is_empty());
            }
            _ => {}
        }
    }

    /// `a = { type = ...; inputs = ...; }`, or a nested deployment `a = lib.nested (...)`.
    fn read_whole(&mut self, id: DeclId, value: ast::Expr) {
        match value {
            ast::Expr::AttrSet(set) => match BodyFacts::of(&set, self.previous, &mut self.cache) {
                Some(facts) => self.apply_facts(id, &set, &facts),
                None => {
                    self.read_entries(id, &set, None);
                    if set.inherits().next().is_some() {
                        self.index.resources[id].inputs_open = true;
                    }
                }
            },
            ast::Expr::Apply(apply) => {
                let function = apply.lambda().map(|f| f.syntax().to_string());
                let kind = function
                    .as_deref()
                    .map(|f| f.rsplit('.').next().unwrap_or(f).trim());
                if kind == Some("nixos") {
                    self.read_nixos_helper(id, &apply);
                    return;
                }
                if !matches!(kind, Some("nested") | Some("mkSequence")) {
                    return;
                }
                match apply.argument().map(strip_parens) {
                    Some(ast::Expr::Lambda(lambda)) => {
                        self.nested_lambdas.insert(
                            lambda.syntax().text_range(),
                            (id, kind == Some("mkSequence")),
                        );
                    }
                    Some(ast::Expr::List(list)) if kind == Some("mkSequence") => {
                        // A plain list has no function to open the scope: make one here.
                        let scope = self.index.add_scope(Some(id), list.syntax().text_range());
                        self.index.resources[id].nested = Some(scope);
                        self.read_sequence(scope, &list);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// `a = nixops4.lib.nixos { ssh = ...; system = ...; }`: an `ssh.nixos` resource whose
    /// inputs are the argument's attributes, but for those the helper itself takes. Which
    /// inputs are given is not known (the helper may add `system`).
    fn read_nixos_helper(&mut self, id: DeclId, apply: &ast::Apply) {
        const HELPER_ONLY: [&str; 5] = ["nixpkgs", "module", "modules", "state", "dependsOn"];
        let decl = &mut self.index.resources[id];
        decl.inputs_open = true;
        if let Some(function) = apply.lambda() {
            decl.type_name = Some(("ssh.nixos".to_owned(), function.syntax().text_range()));
        }
        let Some(ast::Expr::AttrSet(set)) = apply.argument().map(strip_parens) else {
            return;
        };
        for entry in set.attrpath_values() {
            let Some(path) = entry.attrpath().map(|p| static_names(&p)) else {
                continue;
            };
            if let (Some((Some(input), range)), Some(value)) =
                (path.first().cloned(), entry.value())
                && !HELPER_ONLY.contains(&input.as_str())
            {
                self.add_input(id, input, range, &value, path.len() == 1);
            }
        }
    }

    /// A set with a literal `type = "<provider>.<type>"` that no named declaration holds
    /// (nor an `inputs`, where it is data): a nameless declaration of its type and inputs.
    fn read_typed(&mut self, set: &ast::AttrSet) {
        let range = set.syntax().text_range();
        let typed = set.attrpath_values().any(|entry| {
            let path = entry.attrpath().map(|p| static_names(&p));
            matches!(path.as_deref(), Some([(Some(key), _)]) if key == "type")
                && matches!(entry.value(), Some(ast::Expr::Str(s))
                    if plain_string(&s).is_some_and(|t| t.contains('.')))
        });
        if !typed || self.bodies.contains_key(&range) {
            return;
        }
        let in_declaration = set.syntax().ancestors().skip(1).any(|n| {
            self.bodies.contains_key(&n.text_range())
                || ast::AttrpathValue::cast(n)
                    .and_then(|entry| entry.attrpath())
                    .is_some_and(|p| mentions(&p, &["inputs"]))
        });
        if in_declaration {
            return;
        }
        let mut decl: ResourceDecl = read_alone(set).into();
        // No name: its place is where it starts, so that it moves with the set.
        decl.name_ranges.clear();
        decl.name_range = TextRange::empty(range.start());
        decl.scope = self.scope_of(set.syntax());
        decl.body_ranges = vec![range];
        self.index.typed.push(decl);
    }

    /// The steps of `mkSequence [ { name = "a"; type = ...; } ... ]`.
    fn read_sequence(&mut self, scope: ScopeId, list: &ast::List) {
        for item in list.items() {
            let ast::Expr::AttrSet(set) = strip_parens(item) else {
                continue;
            };
            let name = set.attrpath_values().find_map(|entry| {
                let path = static_names(&entry.attrpath()?);
                match (path.as_slice(), entry.value()?) {
                    ([(Some(key), _)], ast::Expr::Str(string)) if key == "name" => {
                        Some((plain_string(&string)?, string.syntax().text_range()))
                    }
                    _ => None,
                }
            });
            let Some((name, range)) = name else { continue };
            let id = self.index.declare(scope, &name, range);
            let decl = &mut self.index.resources[id];
            decl.named_by_string = true;
            decl.whole_ranges.push(range);
            self.add_body(id, set.syntax().text_range());
            self.read_entries(id, &set, Some("name"));
        }
    }

    fn add_body(&mut self, id: DeclId, range: TextRange) {
        self.index.resources[id].body_ranges.push(range);
        self.bodies.insert(range, id);
    }

    pub(super) fn read_entries(&mut self, id: DeclId, set: &ast::AttrSet, skip: Option<&str>) {
        for entry in set.attrpath_values() {
            let Some(path) = entry.attrpath().map(|p| static_names(&p)) else {
                continue;
            };
            if path.first().and_then(|(n, _)| n.as_deref()) == skip {
                continue;
            }
            let Some(value) = entry.value() else { continue };
            let segments: Vec<Option<&str>> = path.iter().map(|(n, _)| n.as_deref()).collect();
            match segments.as_slice() {
                [Some("type")] => {
                    self.read_type(id, &value);
                    self.index.resources[id].type_entry_end =
                        Some(entry.syntax().text_range().end());
                }
                [Some("inputs")] => self.read_inputs(id, value),
                [Some("inputs"), Some(input), rest @ ..] => {
                    self.add_input(id, (*input).to_owned(), path[1].1, &value, rest.is_empty());
                }
                _ => {}
            }
        }
    }

    fn read_type(&mut self, id: DeclId, value: &ast::Expr) {
        self.index.resources[id].type_name = match value {
            ast::Expr::Str(string) => Some((
                plain_string(string).unwrap_or_default(),
                string.syntax().text_range(),
            )),
            _ => None,
        };
    }

    fn read_inputs(&mut self, id: DeclId, value: ast::Expr) {
        match value {
            ast::Expr::AttrSet(set) => {
                let mut value_ranges = Vec::new();
                for entry in set.attrpath_values() {
                    let Some(entry_path) = entry.attrpath().map(|p| static_names(&p)) else {
                        continue;
                    };
                    if let (Some((Some(input), input_range)), Some(input_value)) =
                        (entry_path.first().cloned(), entry.value())
                    {
                        value_ranges.push(input_value.syntax().text_range());
                        self.add_input(id, input, input_range, &input_value, entry_path.len() == 1);
                    }
                }
                let decl = &mut self.index.resources[id];
                decl.inputs_open |= set.inherits().next().is_some();
                decl.inputs_set = Some(InputsSet {
                    range: set.syntax().text_range(),
                    value_ranges,
                    // rnix makes a set of `{` and what follows when the `}` is missing.
                    closed: set.syntax().last_token().map(|t| t.kind())
                        == Some(SyntaxKind::TOKEN_R_BRACE),
                });
            }
            // `inputs = { na` while typing parses as a function's argument pattern.
            ast::Expr::Lambda(lambda) if matches!(lambda.param(), Some(ast::Param::Pattern(_))) => {
                let pattern = lambda.param().map(|p| p.syntax().text_range());
                self.index.resources[id].inputs_set = pattern.map(|range| InputsSet {
                    range,
                    value_ranges: Vec::new(),
                    closed: false,
                });
            }
            _ => self.index.resources[id].inputs_open = true,
        }
    }

    /// An input `input` whose value is `value`; `whole` unless the entry sets only part of
    /// it (`inputs.x.y = ...`), in which case it is an object.
    fn add_input(
        &mut self,
        id: DeclId,
        input: String,
        input_range: TextRange,
        value: &ast::Expr,
        whole: bool,
    ) {
        let decl = &mut self.index.resources[id];
        if decl.inputs.iter().any(|i| i.name == input) {
            return;
        }
        let (literal, string_value) = match value {
            _ if !whole => (Some("object"), None),
            ast::Expr::Str(string) => (Some("string"), plain_string(string)),
            other => (literal_type(other), None),
        };
        decl.inputs.push(InputEntry {
            name: input,
            range: input_range,
            literal,
            string_value,
            value_range: value.syntax().text_range(),
        });
    }

    /// `providers.<name> = { executable = "..."; args = [ ... ]; }` (or its dotted forms).
    fn read_provider(
        &mut self,
        scope: ScopeId,
        name: &str,
        range: TextRange,
        path: &[StaticName],
        value: ast::Expr,
    ) {
        let providers = &mut self.index.providers;
        let id = match providers
            .iter()
            .position(|p| p.scope == scope && p.name == name)
        {
            Some(id) => id,
            None => {
                providers.push(ProviderDecl {
                    name: name.to_owned(),
                    scope,
                    name_range: range,
                    executable: None,
                    args: Vec::new(),
                });
                providers.len() - 1
            }
        };
        let mut facts: Vec<(String, ast::Expr)> = Vec::new();
        match path
            .iter()
            .map(|(n, _)| n.as_deref())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => {
                if let ast::Expr::AttrSet(set) = value {
                    for entry in set.attrpath_values() {
                        let key = entry
                            .attrpath()
                            .map(|p| static_names(&p))
                            .and_then(|p| match p.as_slice() {
                                [(Some(key), _)] => Some(key.clone()),
                                _ => None,
                            });
                        if let (Some(key), Some(value)) = (key, entry.value()) {
                            facts.push((key, value));
                        }
                    }
                }
            }
            [Some(key)] => facts.push(((*key).to_owned(), value)),
            _ => {}
        }
        for (key, value) in facts {
            match (key.as_str(), value) {
                ("executable", ast::Expr::Str(string)) => {
                    providers[id].executable = plain_string(&string);
                }
                ("args", ast::Expr::List(list)) => {
                    providers[id].args = list
                        .items()
                        .filter_map(|item| match item {
                            ast::Expr::Str(string) => plain_string(&string),
                            _ => None,
                        })
                        .collect();
                }
                _ => {}
            }
        }
    }

    /// Adds a reference found at `at` (a node whose ancestors hold its binders); `within`
    /// is the resource around it when already known.
    pub(super) fn add_reference(
        &mut self,
        parts: ReferenceParts,
        at: &SyntaxNode,
        within: Option<DeclId>,
    ) {
        let ReferenceParts {
            base,
            resource,
            resource_range,
            output,
        } = parts;
        // What `base` means is the same everywhere under the innermost function.
        let innermost = at
            .ancestors()
            .find(|n| n.kind() == SyntaxKind::NODE_LAMBDA)
            .map(|n| n.text_range());
        let memo_key = (innermost, base.clone());
        let scope = match self.binder_memo.get(&memo_key) {
            Some(scope) => *scope,
            None => {
                let scope = binding_scope(&self.lambda_scopes, &base, at);
                self.binder_memo.insert(memo_key, scope);
                scope
            }
        };
        let Some(scope) = scope else { return };
        let within = within.or_else(|| {
            at.ancestors()
                .find_map(|n| self.bodies.get(&n.text_range()).copied())
        });
        self.index.references.push(Reference {
            scope,
            within,
            resource,
            resource_range,
            output,
        });
    }
}

/// The innermost scope around a node, given the functions that open scopes by range.
fn scope_around(lambda_scopes: &FxHashMap<TextRange, ScopeId>, node: &SyntaxNode) -> ScopeId {
    node.ancestors()
        .filter(|n| n.kind() == SyntaxKind::NODE_LAMBDA)
        .find_map(|n| lambda_scopes.get(&n.text_range()).copied())
        .unwrap_or(ScopeId::FILE)
}

/// The scope `<base>.resources` (or `resources`) names at `at`, given the functions that
/// open scopes by range; `None` when `base` is not a deployment's argument.
pub(super) fn binding_scope(
    lambda_scopes: &FxHashMap<TextRange, ScopeId>,
    base: &str,
    at: &SyntaxNode,
) -> Option<ScopeId> {
    let binder = at
        .ancestors()
        .filter_map(ast::Lambda::cast)
        .find(|lambda| binds(lambda, base));
    match &binder {
        Some(lambda) => match lambda_scopes.get(&lambda.syntax().text_range()) {
            Some(scope) => Some(*scope),
            None if base == "resources" => Some(scope_around(lambda_scopes, lambda.syntax())),
            // `args.resources.x` where `args` is not a deployment's argument.
            None => None,
        },
        None if base == "resources" => Some(scope_around(lambda_scopes, at)),
        None => None,
    }
}

/// What a set says of a resource by itself (its type and inputs), as a declaration with
/// no name in the file's scope, ranges where they are written.
pub(super) fn read_alone(set: &ast::AttrSet) -> Said {
    let no_cache = BodyCache::default();
    let mut scratch = Builder::new(Index::default(), &no_cache);
    let id = scratch
        .index
        .declare(ScopeId::FILE, "", TextRange::default());
    scratch.read_entries(id, set, None);
    let mut decl = scratch.index.resources.swap_remove(id).into_said();
    decl.inputs_open |= set.inherits().next().is_some();
    decl
}

/// A reference as written: `<base>.resources.<resource>.<output>` or
/// `resources.<resource>.<output>` (base `resources`).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ReferenceParts {
    pub(super) base: String,
    pub(super) resource: Arc<str>,
    pub(super) resource_range: TextRange,
    pub(super) output: Option<(Arc<str>, TextRange)>,
}

pub(super) fn reference_parts(select: &ast::Select) -> Option<ReferenceParts> {
    let ast::Expr::Ident(base) = select.expr()? else {
        return None;
    };
    let base = base.ident_token()?.text().to_owned();
    let path = select.attrpath()?;
    if base != "resources" && !mentions(&path, &["resources"]) {
        return None;
    }
    let path = static_names(&path);
    let path = if base == "resources" {
        &path[..]
    } else if path.first().and_then(|(n, _)| n.as_deref()) == Some("resources") {
        &path[1..]
    } else {
        return None;
    };
    let (Some(resource), resource_range) = path.first().cloned()? else {
        return None;
    };
    let output = match path.get(1) {
        Some((Some(output), range)) => Some((output.as_str().into(), *range)),
        _ => None,
    };
    Some(ReferenceParts {
        base,
        resource: resource.into(),
        resource_range,
        output,
    })
}
