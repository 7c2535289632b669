//! The analysis on fixtures, with the real local provider's `describe` as the schemas
//! (and a hand-written type where a feature needs one the local provider lacks). `$0`
//! marks the cursor.

use std::sync::OnceLock;

use std::collections::BTreeSet;

use nixops4_analysis::workspace::{self, File};
use nixops4_analysis::{Analysis, Recorded, Schemas, TextRange, TextSize};

/// The local provider's describe, from its library: the schemas its binary announces.
fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut schemas = Schemas::default();
        schemas.add_provider("local", &nixops4_resources_local::provider().describe());
        schemas
    })
}

fn with_cursor(fixture: &str) -> (Analysis, TextSize) {
    let offset = fixture.find("$0").expect("a $0 marker");
    let text = fixture.replacen("$0", "", 1);
    (Analysis::new(&text), TextSize::from(offset as u32))
}

fn complete(fixture: &str) -> String {
    let (analysis, offset) = with_cursor(fixture);
    analysis
        .completions(offset, schemas())
        .iter()
        .map(|c| format!("{}  [{}]  {}", c.label, c.detail, c.snippet))
        .collect::<Vec<_>>()
        .join("\n")
}

fn diagnose(text: &str) -> String {
    let analysis = Analysis::new(text);
    analysis
        .diagnostics(schemas(), &BTreeSet::new())
        .iter()
        .map(|d| {
            let source = &text[usize::from(d.range.start())..usize::from(d.range.end())];
            format!("{} `{source}`: {}", d.code, d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn deployment(resources: &str) -> String {
    format!(
        "{{ outputs = {{ self }}: {{ nixops4Deployments.default = {{ resources, ... }}: {{\n{resources}\n}}; }}; }}\n"
    )
}

#[test]
fn completes_resource_types() {
    let text = deployment(r#"resources.a = { type = "lo$0"; };"#);
    assert_eq!(
        complete(&text),
        "local.exec  []  local.exec\nlocal.file  []  local.file\nlocal.memo  []  local.memo\nlocal.state_file  []  local.state_file"
    );
}

#[test]
fn completes_inputs_required_first_without_those_set() {
    let text =
        deployment(r#"resources.a = { type = "local.file"; inputs = { name = "x"; $0 }; };"#);
    assert_eq!(
        complete(&text),
        "contents  [string, required]  contents = \"$1\";\nmode  [string | null]  mode = \"$1\";"
    );
}

#[test]
fn completes_inputs_in_half_typed_sets() {
    let text = deployment(r#"resources = { a = { type = "local.exec"; inputs = { arg$0 } ; }; };"#);
    let items = complete(&text);
    assert!(
        items.starts_with("executable  [string, required]"),
        "{items}"
    );
    assert!(items.contains("args  [array]  args = [ $1 ];"), "{items}");
}

#[test]
fn completes_resource_names_and_outputs() {
    let names = deployment(
        r#"resources.a = { type = "local.file"; inputs = { name = "a"; contents = "x"; }; };
resources.b = { type = "local.exec"; inputs = { executable = resources.$0 }; };"#,
    );
    assert_eq!(complete(&names), "a  [local.file]  a\nb  [local.exec]  b");
    let outputs = deployment(
        r#"resources.a = { type = "local.file"; inputs = { name = "a"; contents = "x"; }; };
resources.b = { type = "local.exec"; inputs = { executable = resources.a.$0"#,
    );
    assert_eq!(
        complete(&outputs),
        "path  [string]  path\nsha256  [string]  sha256"
    );
}

#[test]
fn reports_what_is_wrong_with_precise_ranges() {
    let text = deployment(
        r#"resources = {
  a = { type = "local.flie"; inputs = { name = "a"; }; };
  b = { type = "local.file"; inputs = { name = "b"; contnets = "x"; mode = 644; }; };
  c = { type = "local.exec"; inputs = { executable = "echo"; args = [ resources.b.paht resources.nope.path ]; }; };
  d = { type = "other.thing"; inputs = { anything = 1; }; };
};"#,
    );
    assert_eq!(
        diagnose(&text),
        [
            "unknown-type `\"local.flie\"`: unknown resource type `local.flie` (did you mean `local.file`?)",
            "missing-input `{ name = \"b\"; contnets = \"x\"; mode = 644; }`: `local.file` needs input `contents`",
            "unknown-input `contnets`: `local.file` has no input `contnets` (did you mean `contents`?)",
            "wrong-type `644`: input `mode` must be string or null, not integer",
            "unknown-output `paht`: resource `b` has no output `paht` (did you mean `path`?)",
            "unknown-resource `nope`: there is no resource `nope`",
        ]
        .join("\n")
    );
}

#[test]
fn reports_syntax_errors_and_keeps_going() {
    let text = deployment(
        r#"resources.a = { type = "local.file"; inputs = { name = "a" contents = 1; }; };"#,
    );
    let found = diagnose(&text);
    assert!(found.lines().any(|l| l.starts_with("syntax ")), "{found}");
}

#[test]
fn any_text_at_any_offset_is_answered() {
    let samples = [
        deployment(
            r#"resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.b.path; }; }; resources.b.type = "local.exec";"#,
        ),
        "{ resources = { a = { type = \"".to_owned(),
        "resources.\u{e9}\u{1F600}.x = { inputs.\"\" = ${ }; }".to_owned(),
        "{{{{ ;;; \"\\".to_owned(),
        String::new(),
    ];
    for text in samples {
        let analysis = Analysis::new(&text);
        let _ = analysis.diagnostics(schemas(), &BTreeSet::new());
        let _ = (
            analysis.symbols(),
            analysis.folding_ranges(),
            analysis.semantic_tokens(),
        );
        let files = [File {
            id: "f",
            analysis: &analysis,
        }];
        // Every byte offset, inside multi-byte characters and past the end too.
        for offset in 0..=text.len() + 2 {
            let offset = TextSize::from(offset as u32);
            let _ = analysis.completions(offset, schemas());
            let _ = analysis.hover(offset, schemas(), &Recorded::new());
            let _ = workspace::definition(&files, "f", offset);
            let _ = workspace::references(&files, "f", offset, true);
            let _ = workspace::rename(&files, "f", offset, "renamed");
        }
    }
}

#[test]
fn hover_and_definition_past_unknown_references() {
    let text = deployment(
        r#"resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.nope.x; }; };
resources.b = { type = "local.exec"; inputs.executable = resources.a.sha256; };"#,
    );
    let (analysis, offset) = with_cursor(&text.replacen("a.sha256", "a.sha$0256", 1));
    let hover = analysis
        .hover(offset, schemas(), &Recorded::new())
        .expect("hover on a known output");
    assert!(
        hover.markdown.starts_with("**sha256** `string`"),
        "{}",
        hover.markdown
    );
    let (analysis, offset) = with_cursor(&text.replacen("resources.a.sha", "resources.$0a.sha", 1));
    let definition = workspace::definition(
        &[File {
            id: "f",
            analysis: &analysis,
        }],
        "f",
        offset,
    );
    assert_eq!(definition.len(), 1);
    assert_eq!(slice(&text, definition[0].range), "a");
    let (analysis, offset) = with_cursor(&text.replacen("nope", "no$0pe", 1));
    assert_eq!(
        workspace::definition(
            &[File {
                id: "f",
                analysis: &analysis
            }],
            "f",
            offset
        ),
        Vec::new()
    );
}

fn slice(text: &str, range: TextRange) -> &str {
    &text[usize::from(range.start())..usize::from(range.end())]
}

/// The nested-deployment fixture of the evaluator tests, which Nix evaluates.
fn nested_fixture() -> String {
    std::fs::read_to_string(
        nixops4_tests::repository_root().join("tests/fixtures/eval/nested/flake.nix"),
    )
    .unwrap()
}

fn apply_edits(text: &str, edits: &[(TextRange, String)]) -> String {
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

#[test]
fn nested_deployments_have_their_own_scope_and_reach_the_outer_one() {
    let text = nested_fixture();
    let analysis = Analysis::new(&text);
    let paths: Vec<String> = analysis
        .declared_resources()
        .into_iter()
        .map(|resource| resource.path.join("."))
        .collect();
    assert_eq!(
        paths,
        [
            "state",
            "ca",
            "host",
            "release",
            "odd.name",
            "host.key",
            "host.cert",
            "release.build",
            "release.publish"
        ]
    );
    assert_eq!(analysis.deployment_name(), Some("default"));
    let providers: Vec<(String, Option<String>)> = analysis
        .declared_providers()
        .into_iter()
        .map(|p| (p.name, p.executable))
        .collect();
    assert_eq!(
        providers,
        [
            ("vault".to_owned(), Some("/opt/vault-provider".to_owned())),
            ("vault".to_owned(), Some("/opt/other-vault".to_owned()))
        ]
    );
    // Every reference resolves in its own scope: nothing is unknown (the index's own
    // tests show what each resolves to).
    assert_eq!(diagnose(&text), "");
    // `resources.ca` inside the nested deployment is not the outer `ca`.
    let wrong = text.replacen("outer.resources.ca.id", "resources.ca.id", 1);
    assert_eq!(
        diagnose(&wrong),
        "unknown-resource `ca`: there is no resource `ca`"
    );
}

#[test]
fn completes_in_the_scope_of_the_cursor() {
    let text = nested_fixture();
    let inner = text.replacen(
        "inputs.ca = outer.resources.ca.id;",
        "inputs.ca = resources.$0;",
        1,
    );
    assert_eq!(
        complete(&inner),
        "key  [vault.key]  key\ncert  [local.file]  cert"
    );
    let outer = text.replacen(
        "inputs.ca = outer.resources.ca.id;",
        "inputs.ca = outer.resources.$0",
        1,
    );
    assert_eq!(
        complete(&outer),
        "state  [local.state_file]  state\nca  [vault.ca]  ca\nhost  [nested deployment]  host\nrelease  [nested deployment]  release\nodd.name  [local.memo]  \"odd.name\""
    );
    let steps = text.replacen(
        "state = resources.state; };\n        };",
        "state = resources.release.$0; };\n        };",
        1,
    );
    assert_eq!(
        complete(&steps),
        "build  [local.exec]  build\npublish  [local.exec]  publish"
    );
    let state = deployment(
        r#"resources.s = { type = "local.state_file"; inputs.name = "s.jsonl"; };
resources.m = { type = "local.memo"; inputs.initialize_with = 1; state = $0"#,
    );
    assert_eq!(
        complete(&state),
        "resources.s  [local.state_file]  resources.s;"
    );
}

/// A type the local provider lacks: an enum input, a boolean, a secret output.
fn extra_schemas() -> Schemas {
    let mut schemas = schemas().clone();
    let description: nixops4_provider_protocol::DescribeResponse = serde_json::from_value(serde_json::json!({
        "provider": { "name": "vault", "version": "1" },
        "description": "A key store.",
        "resourceTypes": { "key": {
            "description": "A key.",
            "inputs": { "type": "object", "additionalProperties": false, "required": ["algorithm"], "properties": {
                "algorithm": { "type": "string", "enum": ["ed25519", "rsa"], "description": "The algorithm." },
                "exportable": { "type": "boolean" }
            } },
            "outputs": { "type": "object", "properties": {
                "public": { "type": "string" }, "private": { "type": "string" }
            } },
            "secretOutputs": ["private"]
        } }
    }))
    .unwrap();
    schemas.add_provider("vault", &description);
    schemas
}

#[test]
fn completes_the_values_a_schema_lists() {
    let schemas = extra_schemas();
    let labels = |fixture: &str| {
        let (analysis, offset) = with_cursor(fixture);
        analysis
            .completions(offset, &schemas)
            .into_iter()
            .map(|c| c.snippet)
            .collect::<Vec<_>>()
    };
    let quoted =
        deployment(r#"resources.k = { type = "vault.key"; inputs = { algorithm = "$0"; }; };"#);
    assert_eq!(labels(&quoted), ["ed25519", "rsa"]);
    let boolean = deployment(
        r#"resources.k = { type = "vault.key"; inputs = { algorithm = "rsa"; exportable = t$0rue; }; };"#,
    );
    assert_eq!(labels(&boolean), ["true", "false"]);
}

#[test]
fn hover_shows_recorded_values_but_never_secrets() {
    let schemas = extra_schemas();
    let text = deployment(
        r#"resources.k = { type = "vault.key"; inputs.algorithm = "rsa"; };
resources.f = { type = "local.file"; inputs = { name = "f"; contents = resources.k.public + resources.k.private; }; };"#,
    );
    let mut recorded = Recorded::new();
    recorded.insert(
        vec!["k".into()],
        serde_json::from_value(
            serde_json::json!({ "public": "ssh-rsa AAAA", "private": "TOP-SECRET-VALUE" }),
        )
        .unwrap(),
    );
    let hover_at = |needle: &str| {
        let at = text.find(needle).unwrap() + needle.len() - 1;
        Analysis::new(&text)
            .hover(TextSize::from(at as u32), &schemas, &recorded)
            .map(|h| h.markdown)
            .unwrap_or_default()
    };
    let public = hover_at("resources.k.pub");
    assert!(
        public.contains("Last recorded value: `\"ssh-rsa AAAA\"`"),
        "{public}"
    );
    let private = hover_at("resources.k.priv");
    assert!(private.contains("(secret, not shown)"), "{private}");
    let resource = hover_at("contents = resources.k");
    assert!(
        resource.contains("`public`: `\"ssh-rsa AAAA\"`"),
        "{resource}"
    );
    for markdown in [public, private, resource] {
        assert!(!markdown.contains("TOP-SECRET"), "{markdown}");
    }
    // A type no provider describes: no values at all, since none is known not to be secret.
    let unknown = deployment(r#"resources.k = { type = "other.key"; }; x = resources.k.token;"#);
    let mut recorded = Recorded::new();
    recorded.insert(
        vec!["k".into()],
        serde_json::from_value(serde_json::json!({ "token": "TOP-SECRET" })).unwrap(),
    );
    let at = unknown.find("resources.k.").unwrap() + "resources.".len();
    let markdown = Analysis::new(&unknown)
        .hover(TextSize::from(at as u32), &schemas, &recorded)
        .unwrap()
        .markdown;
    assert!(
        !markdown.contains("TOP-SECRET") && markdown.contains("Recorded in state"),
        "{markdown}"
    );
}

#[test]
fn duplicates_and_cycles_are_reported_where_they_are_written() {
    let text = deployment(
        r#"resources = {
  a = { type = "local.memo"; inputs.initialize_with = resources.c.value; };
  b = { type = "local.memo"; inputs.initialize_with = resources.a.value; };
  c = { type = "local.memo"; inputs.initialize_with = resources.b.value; };
  d = { type = "local.memo"; inputs.initialize_with = resources.d.value; };
  e = { type = "local.memo"; inputs.initialize_with = resources.a.value; };
  e = { type = "local.memo"; inputs.initialize_with = 2; };
};"#,
    );
    assert_eq!(
        diagnose(&text),
        [
            "dependency-cycle `c`: dependency cycle: a → c → b → a",
            "dependency-cycle `a`: dependency cycle: a → c → b → a",
            "dependency-cycle `b`: dependency cycle: a → c → b → a",
            "dependency-cycle `d`: dependency cycle: d → d",
            "duplicate-resource `e`: resource `e` is declared more than once",
        ]
        .join("\n")
    );
}

#[test]
fn quick_fixes_repair_the_text() {
    let text = deployment(
        r#"resources = {
  a = { type = "local.flie"; inputs.name = "a"; };
  blob = {
    type = "local.file";
    inputs = {
      nmae = "b";
    };
  };
  c = { type = "local.file"; inputs = { name = "c"; }; };
  d = { type = "local.file"; };
  e = { type = "local.exec"; inputs.executable = resources.blbo.path; };
};"#,
    );
    let analysis = Analysis::new(&text);
    let edits: Vec<(TextRange, String)> = analysis
        .diagnostics(schemas(), &BTreeSet::new())
        .into_iter()
        .filter_map(|d| d.fix)
        .flat_map(|fix| fix.edits)
        .collect();
    let fixed = apply_edits(&text, &edits);
    assert_eq!(
        fixed,
        deployment(
            r#"resources = {
  a = { type = "local.file"; inputs.name = "a"; };
  blob = {
    type = "local.file";
    inputs = {
      name = "b";
      contents = "";
    };
  };
  c = { type = "local.file"; inputs = { name = "c"; contents = ""; }; };
  d = { type = "local.file"; inputs = { name = ""; contents = ""; }; };
  e = { type = "local.exec"; inputs.executable = resources.blob.path; };
};"#
        )
    );
    // Fixed, the file has nothing left to say but the input `a` still lacks.
    assert_eq!(
        diagnose(&fixed),
        "missing-input `\"local.file\"`: `local.file` needs input `contents`"
    );
}

#[test]
fn references_and_rename_cross_module_files_but_not_deployments() {
    let declares = r#"{ resources, ... }: { resources."web server" = { type = "local.file"; inputs = { name = "w"; contents = "x"; }; }; resources.log.type = "local.memo"; resources.log.inputs.initialize_with = resources."web server".path; }"#;
    let uses = r#"{ resources, ... }: { resources.copy = { type = "local.file"; inputs = { name = "c"; contents = resources."web server".sha256; }; }; }"#;
    let other = r#"{ resources, ... }: { resources."web server" = { type = "local.memo"; inputs.initialize_with = 1; }; x = resources."web server".value; }"#;
    let (a, b, c) = (
        Analysis::new(declares),
        Analysis::new(uses),
        Analysis::new(other),
    );
    let files = [
        File {
            id: "declares.nix",
            analysis: &a,
        },
        File {
            id: "uses.nix",
            analysis: &b,
        },
        File {
            id: "other.nix",
            analysis: &c,
        },
    ];
    let at = TextSize::from(uses.find("\"web server\".sha").unwrap() as u32 + 2);
    let definition = workspace::definition(&files, "uses.nix", at);
    let shown: Vec<(String, &str)> = definition
        .iter()
        .map(|l| {
            (
                l.file.clone(),
                slice(
                    if l.file == "declares.nix" {
                        declares
                    } else {
                        other
                    },
                    l.range,
                ),
            )
        })
        .collect();
    // A name used in a module without declaring it: every deployment declaring it is a candidate.
    assert_eq!(
        shown,
        [
            ("declares.nix".to_owned(), "\"web server\""),
            ("other.nix".to_owned(), "\"web server\"")
        ]
    );
    let at = TextSize::from(declares.find("\"web server\" =").unwrap() as u32 + 1);
    let references = workspace::references(&files, "declares.nix", at, false);
    let places: Vec<&str> = references.iter().map(|l| l.file.as_str()).collect();
    assert_eq!(places, ["declares.nix", "uses.nix"]);
    let rename = workspace::rename(&files, "declares.nix", at, "web").unwrap();
    assert_eq!(rename.old_path, ["web server"]);
    assert_eq!(rename.new_path, ["web"]);
    let edited = |id: &str, text: &str| {
        let edits: Vec<(TextRange, String)> = rename
            .edits
            .iter()
            .filter(|(l, _)| l.file == id)
            .map(|(l, t)| (l.range, t.clone()))
            .collect();
        apply_edits(text, &edits)
    };
    assert_eq!(
        edited("declares.nix", declares),
        declares.replace("\"web server\"", "web")
    );
    assert_eq!(
        edited("uses.nix", uses),
        uses.replace("\"web server\"", "web")
    );
    assert_eq!(edited("other.nix", other), other);
    // Renaming to a name that needs quotes quotes it; one that is taken is refused.
    let quoted = workspace::rename(&files, "declares.nix", at, "web 2").unwrap();
    assert!(quoted.edits.iter().all(|(_, t)| t == "\"web 2\""));
    assert_eq!(
        workspace::rename(&files, "declares.nix", at, "log"),
        Err("there is already a resource `log` here".into())
    );
    let output = TextSize::from(uses.find("sha256").unwrap() as u32);
    assert!(workspace::rename(&files, "uses.nix", output, "x").is_err());
}

#[test]
fn rename_in_nested_scopes_and_sequences() {
    let text = nested_fixture();
    let analysis = Analysis::new(&text);
    let files = [File {
        id: "flake.nix",
        analysis: &analysis,
    }];
    let at = TextSize::from(text.find("\"build\"").unwrap() as u32 + 1);
    let rename = workspace::rename(&files, "flake.nix", at, "compile").unwrap();
    assert_eq!(rename.old_path, ["release", "build"]);
    assert_eq!(rename.new_path, ["release", "compile"]);
    let edits: Vec<(TextRange, String)> = rename
        .edits
        .iter()
        .map(|(l, t)| (l.range, t.clone()))
        .collect();
    let renamed = apply_edits(&text, &edits);
    assert!(renamed.contains(r#"{ name = "compile"; type"#), "{renamed}");
    assert!(renamed.contains("resources.compile.stdout"), "{renamed}");
    // `key` nested in `host`: the outer scope's names are untouched.
    let at = TextSize::from(text.find("key = {").unwrap() as u32);
    let rename = workspace::rename(&files, "flake.nix", at, "ca").unwrap();
    assert_eq!(rename.edits.len(), 2);
    assert_eq!(rename.new_path, ["host", "ca"]);
}

#[test]
fn outline_folding_and_tokens() {
    let text = nested_fixture();
    let analysis = Analysis::new(&text);
    fn show(symbols: &[nixops4_analysis::outline::Symbol], depth: usize, out: &mut Vec<String>) {
        for symbol in symbols {
            out.push(format!(
                "{}{} ({:?}) {}",
                "  ".repeat(depth),
                symbol.name,
                symbol.kind,
                symbol.detail
            ));
            assert!(symbol.range.contains_range(symbol.selection));
            show(&symbol.children, depth + 1, out);
        }
    }
    let mut lines = Vec::new();
    show(&analysis.symbols(), 0, &mut lines);
    assert_eq!(
        lines.join("\n"),
        "vault (Provider) /opt/vault-provider
state (Resource) local.state_file
  name (Input) string
ca (Resource) vault.ca
  commonName (Input) string
host (NestedDeployment) nested deployment
  vault (Provider) /opt/other-vault
  key (Resource) vault.key
    ca (Input) 
  cert (Resource) local.file
    name (Input) string
    contents (Input) 
release (NestedDeployment) nested deployment
  build (Resource) local.exec
    executable (Input) string
  publish (Resource) local.exec
    executable (Input) string
    args (Input) array
odd.name (Resource) local.memo
  initialize_with (Input) integer"
    );
    let multi_line = analysis
        .folding_ranges()
        .into_iter()
        .filter(|r| slice(&text, *r).contains('\n'))
        .count();
    assert!(multi_line >= 6, "{multi_line}");
    let tokens = analysis.semantic_tokens();
    assert!(tokens.windows(2).all(|w| w[0].0.end() <= w[1].0.start()));
    let kinds: BTreeSet<String> = tokens.iter().map(|(_, k)| format!("{k:?}")).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["Declaration", "Input", "Output", "Reference", "Type"]
    );
}
