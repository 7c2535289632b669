//! What a deployment file declares, read from its syntax tree alone: its scopes, the
//! resources each declares (with their `type` literal and inputs), the providers, and every
//! reference `resources.<name>[.<output>]`.
//!
//! Resources are found wherever an attribute path reaches `resources`: the set form
//! `resources = { a = { type = ...; inputs = { ... }; }; }` and the dotted forms
//! `resources.a = { ... }`, `resources.a.type = ...`, `resources.a.inputs.name = ...`,
//! mixed freely. A *scope* is one deployment's namespace of resources: the file itself, a
//! function whose argument pattern binds `resources`, a `nixops4Deployments.<name>` function,
//! and the function given to `nested` or `mkSequence`, whose resources are nested under the
//! resource that holds it. A reference belongs to the scope whose function binds the name it
//! starts from: `resources.a` the innermost one binding `resources`, `outer.resources.a` the
//! one binding `outer`. Broken files give what can be read; nothing here evaluates.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;

pub type ScopeId = usize;
pub type DeclId = usize;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Index {
    /// The first `nixops4Deployments.<name>` the file defines.
    pub deployment: Option<String>,
    /// Scope 0 is the file itself.
    pub scopes: Vec<Scope>,
    pub resources: Vec<ResourceDecl>,
    pub references: Vec<Reference>,
    pub providers: Vec<ProviderDecl>,
    /// Resources by scope and name.
    by_name: HashMap<ScopeId, HashMap<String, DeclId>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// The resource of the enclosing scope that this nested deployment is.
    pub owner: Option<DeclId>,
    pub range: TextRange,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceDecl {
    pub name: String,
    pub scope: ScopeId,
    /// Where the name is first written.
    pub name_range: TextRange,
    /// Every place the name is written in a declaration (dotted forms write it several
    /// times); quotes included for a quoted name.
    pub name_ranges: Vec<TextRange>,
    /// The names of the entries that each declare the whole resource (`a = { ... }`):
    /// more than one is a duplicate.
    pub whole_ranges: Vec<TextRange>,
    /// The expressions that make up the declaration.
    pub body_ranges: Vec<TextRange>,
    /// The `type` string literal and the range of the string, quotes included.
    pub type_name: Option<(String, TextRange)>,
    /// Where the `type = ...;` entry ends, to insert after it.
    pub type_entry_end: Option<rnix::TextSize>,
    /// Inputs written literally, in order.
    pub inputs: Vec<InputEntry>,
    /// The `inputs = { ... }` set, when written as one, with the ranges of its entries'
    /// values (completion offers input names elsewhere in it).
    pub inputs_set: Option<InputsSet>,
    /// Whether inputs come from somewhere this index cannot see (`inputs = f x;`,
    /// `inherit`), so that missing ones cannot be told.
    pub inputs_open: bool,
    /// For a nested deployment (`lib.nested ...`), the scope of its resources.
    pub nested: Option<ScopeId>,
    /// Whether the name is a string value (`{ name = "build"; ... }` in `mkSequence`)
    /// rather than an attribute name, so that it stays quoted when renamed.
    pub named_by_string: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputEntry {
    pub name: String,
    pub range: TextRange,
    /// The JSON type of a literal value (`string`, `integer`, `boolean`, `array`,
    /// `object`, `null`), when the value is a literal.
    pub literal: Option<&'static str>,
    /// The value, when it is a string without interpolation.
    pub string_value: Option<String>,
    pub value_range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputsSet {
    pub range: TextRange,
    pub value_ranges: Vec<TextRange>,
    /// Whether it is a complete `{ ... }` set (not a half-typed one read as a pattern).
    pub closed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub scope: ScopeId,
    /// The innermost resource whose declaration contains the reference.
    pub within: Option<DeclId>,
    pub resource: String,
    pub resource_range: TextRange,
    pub output: Option<(String, TextRange)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderDecl {
    pub name: String,
    pub scope: ScopeId,
    pub name_range: TextRange,
    /// The `executable` when written as a plain string.
    pub executable: Option<String>,
    /// The `args` when written as a list of plain strings.
    pub args: Vec<String>,
}

impl Index {
    /// Indexes a tree. `previous` holds what an earlier version's resource declarations
    /// said; those whose syntax is unchanged (the same green node) are not read again.
    /// Returns the index and what to give the next version.
    pub(crate) fn build(root: &SyntaxNode, previous: &BodyCache) -> (Index, BodyCache) {
        let mut builder = Builder {
            index: Index {
                scopes: vec![Scope {
                    owner: None,
                    range: root.text_range(),
                }],
                ..Index::default()
            },
            lambda_scopes: HashMap::new(),
            nested_lambdas: HashMap::new(),
            bodies: HashMap::new(),
            previous,
            cache: BodyCache::default(),
            read_bodies: HashSet::new(),
            binder_memo: HashMap::new(),
        };
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
        (builder.index, builder.cache)
    }

    /// The resource a reference names, in this file.
    pub fn resolve(&self, reference: &Reference) -> Option<DeclId> {
        self.find(reference.scope, &reference.resource)
    }

    pub fn find(&self, scope: ScopeId, name: &str) -> Option<DeclId> {
        self.by_name.get(&scope)?.get(name).copied()
    }

    /// A resource's full path: `host.key` for `key` nested in `host`.
    pub fn path(&self, decl: DeclId) -> Vec<String> {
        let mut path = vec![self.resources[decl].name.clone()];
        let mut scope = self.resources[decl].scope;
        while let Some(owner) = self.scopes[scope].owner {
            path.insert(0, self.resources[owner].name.clone());
            scope = self.resources[owner].scope;
        }
        path
    }

    /// Whether a scope is a deployment's top level (not nested), whose resources other
    /// files (modules) may declare or reference.
    pub fn is_top_level(&self, scope: ScopeId) -> bool {
        self.scopes[scope].owner.is_none()
    }
}

struct Builder<'a> {
    index: Index,
    /// Lambdas that open a scope, by their range.
    lambda_scopes: HashMap<TextRange, ScopeId>,
    /// Lambdas given to `nested`/`mkSequence`, with the resource they are and whether
    /// they return `mkSequence`'s list of steps.
    nested_lambdas: HashMap<TextRange, (DeclId, bool)>,
    /// The expressions that make up each declaration, by range.
    bodies: HashMap<TextRange, DeclId>,
    previous: &'a BodyCache,
    cache: BodyCache,
    /// Declarations read whole, whose insides the walk skips.
    read_bodies: HashSet<TextRange>,
    /// The scope a reference's base names, by innermost function and base.
    binder_memo: HashMap<(Option<TextRange>, String), Option<ScopeId>>,
}

impl Builder<'_> {
    fn read_lambda(&mut self, lambda: &ast::Lambda) {
        let range = lambda.syntax().text_range();
        let nested = self.nested_lambdas.get(&range).copied();
        let owner = nested.map(|(owner, _)| owner);
        let binds_resources = match lambda.param() {
            Some(ast::Param::Pattern(pattern)) => pattern
                .pat_entries()
                .any(|e| e.ident().is_some_and(|i| ident_is(&i, "resources"))),
            Some(ast::Param::IdentParam(param)) => {
                param.ident().is_some_and(|i| ident_is(&i, "resources"))
            }
            None => false,
        };
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
            let scope = self.index.scopes.len();
            self.index.scopes.push(Scope { owner, range });
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
        node.ancestors()
            .filter(|n| n.kind() == SyntaxKind::NODE_LAMBDA)
            .find_map(|n| self.lambda_scopes.get(&n.text_range()).copied())
            .unwrap_or(0)
    }

    fn decl(&mut self, scope: ScopeId, name: &str, range: TextRange) -> DeclId {
        let resources = &mut self.index.resources;
        let names = self.index.by_name.entry(scope).or_default();
        let id = match names.get(name) {
            Some(id) => *id,
            None => {
                resources.push(ResourceDecl {
                    name: name.to_owned(),
                    scope,
                    name_range: range,
                    ..ResourceDecl::default()
                });
                names.insert(name.to_owned(), resources.len() - 1);
                resources.len() - 1
            }
        };
        if !resources[id].name_ranges.contains(&range) {
            resources[id].name_ranges.push(range);
        }
        id
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
        let declares = |names: &[(Option<String>, TextRange)]| {
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
                       inner_path: &[(Option<String>, TextRange)],
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
        path: &[(Option<String>, TextRange)],
        value: ast::Expr,
    ) {
        let id = self.decl(scope, name, range);
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
            ast::Expr::AttrSet(set) => {
                let green = set.syntax().green().to_owned();
                let key = green_key(&green);
                // The cache holds the node, so its address names it alone.
                let facts = match self.previous.get(&key) {
                    Some((_, facts)) => Some(facts.clone()),
                    None => BodyFacts::read(&set).map(Arc::new),
                };
                match facts {
                    Some(facts) => {
                        self.apply_facts(id, &set, &facts);
                        self.cache.insert(key, (green, facts));
                    }
                    None => {
                        self.read_entries(id, &set, None);
                        if set.inherits().next().is_some() {
                            self.index.resources[id].inputs_open = true;
                        }
                    }
                }
            }
            ast::Expr::Apply(apply) => {
                let function = apply.lambda().map(|f| f.syntax().to_string());
                let kind = function
                    .as_deref()
                    .map(|f| f.rsplit('.').next().unwrap_or(f).trim());
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
                        let scope = self.index.scopes.len();
                        self.index.scopes.push(Scope {
                            owner: Some(id),
                            range: list.syntax().text_range(),
                        });
                        self.index.resources[id].nested = Some(scope);
                        self.read_sequence(scope, &list);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
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
            let id = self.decl(scope, &name, range);
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

    fn read_entries(&mut self, id: DeclId, set: &ast::AttrSet, skip: Option<&str>) {
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
                    closed: true,
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
        path: &[(Option<String>, TextRange)],
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
    fn add_reference(&mut self, parts: ReferenceParts, at: &SyntaxNode, within: Option<DeclId>) {
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
                let scope = self.binding_scope(&base, at);
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

    /// The scope `<base>.resources` (or `resources`) names at `at`; `None` when `base`
    /// is not a deployment's argument.
    fn binding_scope(&self, base: &str, at: &SyntaxNode) -> Option<ScopeId> {
        let binder = at
            .ancestors()
            .filter_map(ast::Lambda::cast)
            .find(|lambda| binds(lambda, base));
        match &binder {
            Some(lambda) => match self.lambda_scopes.get(&lambda.syntax().text_range()) {
                Some(scope) => Some(*scope),
                None if base == "resources" => Some(self.scope_of(lambda.syntax())),
                // `args.resources.x` where `args` is not a deployment's argument.
                None => None,
            },
            None if base == "resources" => Some(self.scope_of(at)),
            None => None,
        }
    }

    /// Puts what a declaration's `{ ... }` says (read now or earlier) on resource `id`.
    fn apply_facts(&mut self, id: DeclId, set: &ast::AttrSet, facts: &BodyFacts) {
        let start = set.syntax().text_range().start();
        let at = |range: TextRange| range + start;
        let body = &facts.decl;
        let decl = &mut self.index.resources[id];
        if let Some(end) = body.type_entry_end {
            decl.type_name = body.type_name.as_ref().map(|(t, r)| (t.clone(), at(*r)));
            decl.type_entry_end = Some(end + start);
        }
        for input in &body.inputs {
            if !decl.inputs.iter().any(|i| i.name == input.name) {
                decl.inputs.push(InputEntry {
                    range: at(input.range),
                    value_range: at(input.value_range),
                    ..input.clone()
                });
            }
        }
        if let Some(inputs) = &body.inputs_set {
            decl.inputs_set = Some(InputsSet {
                range: at(inputs.range),
                value_ranges: inputs.value_ranges.iter().map(|r| at(*r)).collect(),
                closed: inputs.closed,
            });
        }
        decl.inputs_open |= body.inputs_open;
        for parts in &facts.references {
            let parts = ReferenceParts {
                resource_range: at(parts.resource_range),
                output: parts.output.as_ref().map(|(o, r)| (o.clone(), at(*r))),
                ..parts.clone()
            };
            self.add_reference(parts, set.syntax(), Some(id));
        }
        self.read_bodies.insert(set.syntax().text_range());
    }
}

/// A reference as written: `<base>.resources.<resource>.<output>` or
/// `resources.<resource>.<output>` (base `resources`).
#[derive(Clone, Debug, PartialEq)]
struct ReferenceParts {
    base: String,
    resource: String,
    resource_range: TextRange,
    output: Option<(String, TextRange)>,
}

fn reference_parts(select: &ast::Select) -> Option<ReferenceParts> {
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
        Some((Some(output), range)) => Some((output.clone(), *range)),
        _ => None,
    };
    Some(ReferenceParts {
        base,
        resource,
        resource_range,
        output,
    })
}

/// What the previous version's declarations said, by the identity of their green node.
pub(crate) type BodyCache = HashMap<usize, (rowan::GreenNode, Arc<BodyFacts>)>;

fn green_key(green: &rowan::GreenNode) -> usize {
    let data: &rowan::GreenNodeData = green;
    data as *const rowan::GreenNodeData as usize
}

/// What a resource's `{ ... }` says, with ranges from its start: type, inputs and the
/// references inside. Only for declarations that hold no function and no nested
/// declaration, so that it depends on their text alone.
#[derive(Debug)]
pub(crate) struct BodyFacts {
    decl: ResourceDecl,
    references: Vec<ReferenceParts>,
}

impl BodyFacts {
    fn read(set: &ast::AttrSet) -> Option<BodyFacts> {
        let mut references = Vec::new();
        for node in set.syntax().descendants() {
            match node.kind() {
                SyntaxKind::NODE_LAMBDA => return None,
                SyntaxKind::NODE_ATTRPATH_VALUE => {
                    let declares = ast::AttrpathValue::cast(node)
                        .and_then(|e| e.attrpath())
                        .is_some_and(|p| {
                            mentions(&p, &["resources", "providers", "nixops4Deployments"])
                        });
                    if declares {
                        return None;
                    }
                }
                SyntaxKind::NODE_SELECT => {
                    references.extend(ast::Select::cast(node).as_ref().and_then(reference_parts));
                }
                _ => {}
            }
        }
        let no_cache = BodyCache::default();
        let mut scratch = Builder {
            index: Index::default(),
            lambda_scopes: HashMap::new(),
            nested_lambdas: HashMap::new(),
            bodies: HashMap::new(),
            previous: &no_cache,
            cache: BodyCache::default(),
            read_bodies: HashSet::new(),
            binder_memo: HashMap::new(),
        };
        let id = scratch.decl(0, "", TextRange::default());
        scratch.read_entries(id, set, None);
        let mut decl = scratch.index.resources.swap_remove(id);
        decl.inputs_open |= set.inherits().next().is_some();
        let start = set.syntax().text_range().start();
        let from_start = |range: TextRange| range - start;
        decl.type_name = decl.type_name.map(|(t, r)| (t, from_start(r)));
        decl.type_entry_end = decl.type_entry_end.map(|end| end - start);
        for input in &mut decl.inputs {
            input.range = from_start(input.range);
            input.value_range = from_start(input.value_range);
        }
        if let Some(inputs) = &mut decl.inputs_set {
            inputs.range = from_start(inputs.range);
            for range in &mut inputs.value_ranges {
                *range = from_start(*range);
            }
        }
        for reference in &mut references {
            reference.resource_range = from_start(reference.resource_range);
            if let Some((_, range)) = &mut reference.output {
                *range = from_start(*range);
            }
        }
        Some(BodyFacts { decl, references })
    }
}

/// Whether a function's parameter binds `name`.
pub(crate) fn binds(lambda: &ast::Lambda, name: &str) -> bool {
    match lambda.param() {
        Some(ast::Param::IdentParam(param)) => param.ident().is_some_and(|i| ident_is(&i, name)),
        Some(ast::Param::Pattern(pattern)) => {
            pattern
                .pat_bind()
                .and_then(|b| b.ident())
                .is_some_and(|i| ident_is(&i, name))
                || pattern
                    .pat_entries()
                    .any(|e| e.ident().is_some_and(|i| ident_is(&i, name)))
        }
        None => false,
    }
}

/// Whether an attribute path names one of `names` (bare or quoted).
fn mentions(path: &ast::Attrpath, names: &[&str]) -> bool {
    path.attrs().any(|attr| match attr {
        ast::Attr::Ident(ident) => ident
            .ident_token()
            .is_some_and(|t| names.contains(&t.text())),
        ast::Attr::Str(string) => {
            plain_string(&string).is_some_and(|s| names.contains(&s.as_str()))
        }
        ast::Attr::Dynamic(_) => false,
    })
}

fn ident_is(ident: &ast::Ident, name: &str) -> bool {
    ident.ident_token().is_some_and(|t| t.text() == name)
}

fn strip_parens(expr: ast::Expr) -> ast::Expr {
    match expr {
        ast::Expr::Paren(paren) => paren.expr().map_or(ast::Expr::Paren(paren), strip_parens),
        other => other,
    }
}

/// The names of an attribute path, `None` for a dynamic part (`${x}`).
fn static_names(path: &ast::Attrpath) -> Vec<(Option<String>, TextRange)> {
    path.attrs()
        .map(|attr| {
            let range = attr.syntax().text_range();
            let name = match attr {
                ast::Attr::Ident(ident) => ident.ident_token().map(|t| t.text().to_owned()),
                ast::Attr::Str(string) => plain_string(&string),
                ast::Attr::Dynamic(_) => None,
            };
            (name, range)
        })
        .collect()
}

/// The text of a string without interpolations. Read from its tokens: rnix's own
/// `normalized_parts` panics on some broken strings.
fn plain_string(string: &ast::Str) -> Option<String> {
    let node = string.syntax();
    let indented = node.first_token().is_some_and(|t| t.text() == "''");
    let mut raw = String::new();
    for element in node.children_with_tokens() {
        match element {
            rowan::NodeOrToken::Token(token) => match token.kind() {
                SyntaxKind::TOKEN_STRING_CONTENT => raw.push_str(token.text()),
                SyntaxKind::TOKEN_STRING_START | SyntaxKind::TOKEN_STRING_END => {}
                _ => return None,
            },
            // An interpolation, or a part that did not parse.
            rowan::NodeOrToken::Node(_) => return None,
        }
    }
    if indented {
        // Indentation stripping and `''` escapes: not worth it for names; one plain line is.
        return (!raw.contains(['\n', '$']) && !raw.contains("''")).then_some(raw);
    }
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some(other) => text.push(other),
            None => return None,
        }
    }
    Some(text)
}

fn literal_type(value: &ast::Expr) -> Option<&'static str> {
    match value {
        ast::Expr::Str(_) => Some("string"),
        ast::Expr::List(_) => Some("array"),
        ast::Expr::AttrSet(_) => Some("object"),
        ast::Expr::Literal(literal) => match literal.syntax().first_token().map(|t| t.kind()) {
            Some(SyntaxKind::TOKEN_INTEGER) => Some("integer"),
            Some(SyntaxKind::TOKEN_FLOAT) => Some("number"),
            _ => None,
        },
        ast::Expr::Ident(ident) => match ident.ident_token().as_ref().map(|t| t.text()) {
            Some("true" | "false") => Some("boolean"),
            Some("null") => Some("null"),
            _ => None,
        },
        _ => None,
    }
}
