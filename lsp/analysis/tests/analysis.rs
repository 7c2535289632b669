//! Completion and diagnostics on fixtures, with the real local provider's `describe` as
//! the schemas. `$0` marks the cursor.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nixops4_analysis::{Analysis, Schemas, TextSize};
use nixops4_provider_protocol::Response;

/// The local provider's describe, asked of the real binary once.
fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut child = Command::new(nixops4_tests::binary("nixops4-resources-local"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the local provider");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{{\"describeRequest\":{{}}}}").unwrap();
        drop(stdin);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        child.wait().unwrap();
        let Response::DescribeResponse(description) = serde_json::from_str(&line).unwrap() else {
            panic!("not a describe response: {line}")
        };
        let mut schemas = Schemas::default();
        schemas.add_provider("local", &description);
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
        .diagnostics(schemas())
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
        let _ = analysis.diagnostics(schemas());
        // Every byte offset, inside multi-byte characters and past the end too.
        for offset in 0..=text.len() + 2 {
            let _ = analysis.completions(TextSize::from(offset as u32), schemas());
            let _ = analysis.hover(TextSize::from(offset as u32), schemas());
            let _ = analysis.definition(TextSize::from(offset as u32));
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
        .hover(offset, schemas())
        .expect("hover on a known output");
    assert!(
        hover.markdown.starts_with("**sha256** `string`"),
        "{}",
        hover.markdown
    );
    let (analysis, offset) = with_cursor(&text.replacen("resources.a.sha", "resources.$0a.sha", 1));
    let definition = analysis.definition(offset).expect("a definition");
    assert_eq!(
        &text[usize::from(definition.start())..usize::from(definition.end())],
        "a"
    );
    let (analysis, offset) = with_cursor(&text.replacen("nope", "no$0pe", 1));
    assert_eq!(analysis.definition(offset), None);
}
