//! Tests of contained parsing: which edits are answered by parsing one block again, and
//! that the answer is what parsing the whole text gives.

use rnix::{TextRange, TextSize};

use super::{Parsed, reparse};

const DEPLOYMENT: &str = r#"{ resources, ... }: {
  resources = {
    a = {
      type = "local.file";
      inputs = {
        name = "a.txt";
        mode = "0644";
      };
    };
    b = {
      type = "local.file";
      inputs = { name = "b.txt"; contents = resources.a.sha256; };
    };
  };
}
"#;

/// Types `typed` at `at` of `text` one piece at a time; for each keystroke, whether one
/// block (or the entries around it) was parsed again, after checking that the tree and
/// errors are the whole parse's where it says it is one.
fn type_pieces(text: &str, at: usize, typed: &[&str]) -> Vec<bool> {
    let mut text = text.to_owned();
    let mut parsed = Parsed::new(&text);
    let mut at = at;
    let mut reparsed = Vec::new();
    for piece in typed {
        let mut new_text = text.clone();
        new_text.insert_str(at, piece);
        let range = TextRange::empty(TextSize::from(at as u32));
        let incremental = reparse(&parsed, &text, range, piece, &new_text);
        let whole = Parsed::new(&new_text);
        reparsed.push(incremental.is_some());
        if let Some(incremental) = incremental.as_ref().filter(|p| p.is_whole_parse()) {
            assert_eq!(
                incremental.green, whole.green,
                "after {piece:?} in:\n{new_text}"
            );
            let shown = |p: &Parsed| {
                let mut errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
                errors.sort();
                errors
            };
            assert_eq!(
                shown(incremental),
                shown(&whole),
                "after {piece:?} in:\n{new_text}"
            );
        }
        parsed = incremental.unwrap_or(whole);
        text = new_text;
        at += piece.len();
    }
    reparsed
}

#[test]
fn a_new_input_name_is_reparsed_alone_and_its_error_stays_inside() {
    let at = DEPLOYMENT.find("mode = \"0644\";").unwrap() + "mode = \"0644\";".len();
    let typed = ["\n        ", "o", "w", "n", "e", "r", " = ", "\"me\"", ";"];
    assert_eq!(type_pieces(DEPLOYMENT, at, &typed), vec![true; typed.len()]);
    // The error is inside `inputs`: resource `b` after it parses as it did.
    let mut text = DEPLOYMENT.to_owned();
    text.insert_str(at, " own");
    let parsed = Parsed::new(&text);
    let inputs_end = text.find("      };\n    };\n    b = {").unwrap();
    let errors: Vec<TextRange> = parsed
        .errors
        .iter()
        .filter_map(super::error_range)
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|r| r.end() <= TextSize::from(inputs_end as u32 + 7))
    );
    let root = rnix::SyntaxNode::new_root(parsed.green.clone());
    assert!(root.to_string() == text);
    assert!(
        root.descendants()
            .any(|n| n.kind() == rnix::SyntaxKind::NODE_ATTRPATH_VALUE
                && n.to_string().starts_with("b = {"))
    );
}

/// Whether resource `b` of [`DEPLOYMENT`] is still an entry of its own in `parsed`.
fn b_is_an_entry(parsed: &Parsed) -> bool {
    let root = rnix::SyntaxNode::new_root(parsed.green.clone());
    root.descendants().any(|n| {
        n.kind() == rnix::SyntaxKind::NODE_ATTRPATH_VALUE && n.to_string().starts_with("b = {")
    })
}

#[test]
fn an_unclosed_brace_or_string_stays_inside_the_entry_typed() {
    let at = DEPLOYMENT.find("mode = \"0644\";").unwrap() + "mode = \"0644\";".len();
    let typed = [" extra = resources.a.", " {", " \""];
    assert_eq!(type_pieces(DEPLOYMENT, at, &typed), vec![true; 3]);
    let mut text = DEPLOYMENT.to_owned();
    let mut parsed = Parsed::new(&text);
    let mut from = at;
    for piece in typed {
        let range = TextRange::empty(TextSize::from(from as u32));
        let mut new_text = text.clone();
        new_text.insert_str(from, piece);
        parsed = reparse(&parsed, &text, range, piece, &new_text).unwrap();
        assert_eq!(
            rnix::SyntaxNode::new_root(parsed.green.clone()).to_string(),
            new_text
        );
        assert!(b_is_an_entry(&parsed), "after {piece:?}");
        (text, from) = (new_text, from + piece.len());
    }
    assert!(!parsed.is_whole_parse());
    // Each opening left open is an error where it is.
    let opened: Vec<TextRange> = parsed
        .errors
        .iter()
        .filter_map(super::error_range)
        .collect();
    let brace = at + typed[0].len() + 1;
    assert!(opened.contains(&TextRange::at(
        TextSize::from(brace as u32),
        TextSize::from(1)
    )));
    // Deleting what was typed gives the whole parse again.
    let typed_len: usize = typed.iter().map(|p| p.len()).sum();
    let range = TextRange::at(TextSize::from(at as u32), TextSize::from(typed_len as u32));
    let restored = reparse(&parsed, &text, range, "", DEPLOYMENT).unwrap();
    assert!(restored.is_whole_parse());
    assert_eq!(restored.green, Parsed::new(DEPLOYMENT).green);
    assert!(restored.errors.is_empty());
}

#[test]
fn a_resource_typed_line_by_line_leaves_the_next_one_an_entry() {
    let at = DEPLOYMENT.find("    b = {").unwrap();
    let lines = [
        "    n = {\n",
        "      type = \"local.file\";\n",
        "      inputs = {\n",
        "        name = \"n.txt\";\n",
        "      };\n",
        "    };\n",
    ];
    assert_eq!(type_pieces(DEPLOYMENT, at, &lines), vec![true; lines.len()]);
    let mut text = DEPLOYMENT.to_owned();
    let mut parsed = Parsed::new(&text);
    let mut from = at;
    for line in lines {
        let range = TextRange::empty(TextSize::from(from as u32));
        let mut new_text = text.clone();
        new_text.insert_str(from, line);
        parsed = reparse(&parsed, &text, range, line, &new_text).unwrap();
        assert!(b_is_an_entry(&parsed), "after {line:?}");
        (text, from) = (new_text, from + line.len());
    }
    // Closed again: the whole parse, without error.
    assert!(parsed.is_whole_parse());
    assert!(parsed.errors.is_empty());
    assert_eq!(parsed.green, Parsed::new(&text).green);
}

#[test]
fn a_block_after_rec_or_before_a_colon_is_not_parsed_alone() {
    for text in [
        "rec { a = { b = 1; }; }",
        "{ a = rec { b = 1; }; }",
        "{ a = { }: 1; }",
    ] {
        let at = text.rfind('1').unwrap();
        // Whatever is reparsed, it equals the whole parse (checked inside).
        type_pieces(text, at, &["x", " y", "@"]);
    }
}

#[test]
fn blocks_nested_deeper_than_parsed_alone_are_parsed_in_place() {
    // Deeper than rnix parses, with an error at the bottom: answered, without overflowing.
    let depth = 600;
    let text = format!(
        "{}{{ b = 1; ow }}{}",
        "{ a = ".repeat(depth),
        " ; }".repeat(depth)
    );
    let parsed = Parsed::new(&text);
    assert!(!parsed.errors.is_empty());
    assert_eq!(
        rnix::SyntaxNode::new_root(parsed.green.clone()).to_string(),
        text
    );
    // A keystroke at the bottom and one near the top give what parsing everything gives.
    type_pieces(&text, text.find("ow").unwrap() + 2, &["n"]);
    type_pieces(&text, "{ a = { a = ".len(), &["o"]);
}
