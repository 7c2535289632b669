//! Property tests of the analysis under random edits: reparsing only the block or the
//! entries around an edit, errors or not, must give exactly what parsing everything gives
//! (tree, errors and index), except while an edit leaves a bracket or string open (then
//! the entries around it are parsed contained, see docs/architecture/006), and no
//! question asked at any offset of any intermediate text may panic. Diagnostics carried
//! over from the version before an edit must be those of the whole text too.

use std::collections::BTreeSet;

use nixops4_analysis::workspace::{self, File};
use nixops4_analysis::{Analysis, Recorded, Schemas, TextRange, TextSize};
use proptest::prelude::*;

/// Pieces that make and break Nix syntax: braces, strings, comments, interpolation,
/// references, multi-byte characters.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ";",
    "=",
    " = ",
    "\"",
    "''",
    "${",
    "#",
    "/*",
    "*/",
    "\n",
    " ",
    "a",
    "rec ",
    "resources.",
    "resources.a.",
    "inputs = { ",
    "type = \"local.file\"; ",
    "é",
    "😀",
    "\r\n",
    "x: ",
    "{ resources, ... }: ",
    "lib.nested (",
    ")",
    "outer@",
    ".",
    // A name typed where an attribute goes, before its `= ...;`.
    "ow",
    "owner ",
    "let ",
    " in ",
    ":",
    "@",
];

fn fixture() -> String {
    std::fs::read_to_string(
        nixops4_tests::repository_root().join("tests/fixtures/eval/nested/flake.nix"),
    )
    .unwrap()
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// An edit: where (as a fraction of the text), how much to delete, what to insert.
fn edit() -> impl Strategy<Value = (f64, usize, Vec<usize>)> {
    (
        0.0..1.0f64,
        0..12usize,
        prop::collection::vec(0..FRAGMENTS.len(), 0..3),
    )
}

/// Where an edit starts: at a fraction of the text, or (as typing mostly does) right after
/// one of its entries' `;`, inside the set that holds it.
fn edit_start(text: &str, at: f64, after_entry: bool) -> usize {
    let entries: Vec<usize> = text.match_indices(';').map(|(i, _)| i + 1).collect();
    if after_entry && !entries.is_empty() {
        entries[((at * entries.len() as f64) as usize).min(entries.len() - 1)]
    } else {
        floor_boundary(text, (at * text.len() as f64) as usize)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn block_reparse_equals_full_parse(edits in prop::collection::vec((edit(), any::<bool>()), 1..25)) {
        let mut analysis = Analysis::new(&fixture());
        let mut schemas = Schemas::default();
        schemas.add_provider("local", &nixops4_resources_local::provider().describe());
        for ((at, delete, insert), after_entry) in edits {
            let text = analysis.text().to_owned();
            let start = edit_start(&text, at, after_entry);
            let end = floor_boundary(&text, start + delete);
            let inserted: String = insert.iter().map(|i| FRAGMENTS[*i]).collect();
            let range = TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32));
            let edited = analysis.edited(range, &inserted);
            let mut expected_text = text.clone();
            expected_text.replace_range(start..end, &inserted);
            let full = Analysis::new(&expected_text);
            prop_assert_eq!(edited.text(), expected_text.as_str());
            if edited.is_whole_parse() {
                prop_assert!(edited.same_as(&full), "after replacing {start}..{end} with {inserted:?} in:\n{text}");
                // Diagnostics kept from the version before (see `diagnostics`) are the
                // whole text's too.
                prop_assert_eq!(
                    edited.diagnostics(&schemas, &BTreeSet::new()),
                    full.diagnostics(&schemas, &BTreeSet::new()),
                    "after replacing {}..{} with {:?} in:\n{}", start, end, inserted, text
                );
            }
            let offset = TextSize::from(floor_boundary(&expected_text, (at * expected_text.len() as f64) as usize) as u32);
            let _ = edited.diagnostics(&schemas, &BTreeSet::new());
            let _ = edited.completions(offset, &schemas, &[&edited]);
            let _ = edited.hover(offset, &schemas, &Recorded::new(), &[&edited]);
            let files = [File { id: "f", analysis: &edited }];
            let _ = workspace::references(&files, "f", offset, true);
            let _ = workspace::rename(&files, "f", offset, "b");
            let _ = (edited.symbols(), edited.folding_ranges(), edited.semantic_tokens());
            analysis = edited;
        }
    }
}

/// Applies `edits` (ranges of the text as it is then) one after the other, holding the
/// analysis and its carried diagnostics equal to the whole text's after each.
fn type_into(text: &str, edits: &[(usize, usize, &str)]) {
    let mut schemas = Schemas::default();
    schemas.add_provider("local", &nixops4_resources_local::provider().describe());
    let mut analysis = Analysis::new(text);
    let _ = analysis.diagnostics(&schemas, &BTreeSet::new());
    for (start, end, inserted) in edits {
        let range = TextRange::new(TextSize::from(*start as u32), TextSize::from(*end as u32));
        let mut expected = analysis.text().to_owned();
        expected.replace_range(start..end, inserted);
        analysis = analysis.edit(range, inserted);
        assert_eq!(analysis.text(), expected);
        let whole = Analysis::new(&expected);
        if analysis.is_whole_parse() {
            assert!(analysis.same_as(&whole), "after {inserted:?}:\n{expected}");
            assert_eq!(
                analysis.diagnostics(&schemas, &BTreeSet::new()),
                whole.diagnostics(&schemas, &BTreeSet::new()),
                "after {inserted:?}:\n{expected}"
            );
        } else {
            let _ = analysis.diagnostics(&schemas, &BTreeSet::new());
        }
    }
}

const RESOURCES: &str = r#"{ resources, ... }: {
  resources = {
    a = { type = "local.file"; inputs = { name = "a"; contents = resources.n.path; }; };
    b = { type = "local.file"; inputs = { name = "b"; contents = resources.a.path; }; };
    c = { type = "local.file"; inputs = { name = "c"; }; };
  };
}
"#;

#[test]
fn resources_typed_pasted_and_deleted_keep_the_whole_texts_analysis() {
    let after_b = RESOURCES.find("    c = {").unwrap();
    let lines = [
        "    n = {\n",
        "      type = \"local.file\";\n",
        "      inputs = {\n",
        "        name = \"n\"; contents = resources.c.path;\n",
        "      };\n",
        "    };\n",
    ];
    let mut edits = Vec::new();
    let mut at = after_b;
    for line in lines {
        edits.push((at, at, line));
        at += line.len();
    }
    // Two resources naming each other, pasted at once: a cycle.
    let pasted = "    p = { type = \"local.file\"; inputs = { name = \"p\"; contents = resources.q.path; }; };\n    q = { type = \"local.file\"; inputs = { name = \"q\"; contents = resources.p.path; }; };\n";
    edits.push((at, at, pasted));
    // Then `b` deleted: `a`, which it named, is named by nothing now.
    let mut text = RESOURCES.to_owned();
    for (start, end, inserted) in &edits {
        text.replace_range(*start..*end, inserted);
    }
    let b_start = text.find("    b = {").unwrap();
    let b_end = b_start + text[b_start..].find('\n').unwrap() + 1;
    edits.push((b_start, b_end, ""));
    // Then `c` written again whole, the same name with a new dependency: the cycle
    // a → n → c → a, though no name came or went.
    text.replace_range(b_start..b_end, "");
    let c_start = text.find("    c = {").unwrap();
    let c_end = c_start + text[c_start..].find('\n').unwrap() + 1;
    edits.push((
        c_start,
        c_end,
        "    c = { type = \"local.file\"; inputs = { name = \"c\"; contents = resources.a.path; }; };\n",
    ));
    type_into(RESOURCES, &edits);
}

/// A dependency typed into a declaration's inputs, which closes a cycle through two
/// others, then deleted: edits inside one body, whose cycles are found again only when
/// the set of resources it names changed.
#[test]
fn a_dependency_typed_into_a_body_closes_and_opens_a_cycle() {
    let text = RESOURCES.replace(
        "    c = {",
        "    n = { type = \"local.file\"; inputs = { name = \"n\"; contents = resources.c.path; }; };\n    c = {",
    );
    let at = text.find("name = \"c\"; ").unwrap() + "name = \"c\"; ".len();
    let typed = "contents = resources.a.path; ";
    // Typed in two parts, the second naming `a` again: the set of dependencies is the same.
    let (first, second) = typed.split_at(typed.len() - 6);
    type_into(
        &text,
        &[
            (at, at, first),
            (at + first.len(), at + first.len(), second),
            (at, at + typed.len(), ""),
        ],
    );
}
