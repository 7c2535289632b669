//! The keystrokes of the benchmark: what a user types into a generated deployment, as
//! sequences of edits, each followed by a completion request where the cursor is.
//!
//! The cases are those of real typing: a new input name (a syntax error until `= …;`),
//! a new resource typed line by line, a line deleted, 50 resources pasted, and the worst
//! case, `resources.x.` followed by an unclosed `{` and an unterminated string. The string
//! literal edit of the first benchmark is kept as the easy case. Each sequence ends by
//! restoring the original text, so that the next starts from it.

/// One edit: bytes `start..end` of the current text replaced by `text`, then completion
/// asked at `cursor` (a byte offset in the text after the edit).
pub struct Step {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub cursor: usize,
}

#[derive(Clone, Copy, Debug)]
pub enum Case {
    InString,
    InputName,
    ResourceLineByLine,
    DeleteLine,
    Paste50,
    Unclosed,
}

impl Case {
    pub const ALL: [Case; 6] = [
        Case::InString,
        Case::InputName,
        Case::ResourceLineByLine,
        Case::DeleteLine,
        Case::Paste50,
        Case::Unclosed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::InString => "a character in a string",
            Case::InputName => "a new input name",
            Case::ResourceLineByLine => "a new resource, line by line",
            Case::DeleteLine => "a line deleted",
            Case::Paste50 => "50 resources pasted",
            Case::Unclosed => "resources.x. then { then \"",
        }
    }

    /// The edits of one sequence at resource `i` of `text`, the last restoring `text`.
    pub fn steps(self, text: &str, i: usize) -> Vec<Step> {
        let mut edits = Edits::new(text);
        // The end of resource i's `mode = "0644";` line, inside its `inputs`.
        let mode_line = after(text, &format!("\"out/r{i}.txt\""), "mode = \"0644\";");
        match self {
            Case::InString => {
                let at = text.find(&format!("\"out/r{i}.txt\"")).unwrap() + 5;
                edits.insert(at, "x", at + 1);
                edits.restore_at(at + 1);
            }
            Case::InputName => {
                let indent = "\n            ";
                edits.insert(mode_line, indent, mode_line + indent.len());
                let name_start = mode_line + indent.len();
                for (at, c) in (name_start..).zip(["o", "w", "n", "e", "r"]) {
                    edits.insert(at, c, at + 1);
                }
                edits.restore_at(mode_line);
            }
            Case::ResourceLineByLine => {
                let end = resource_end(text, i);
                let lines = [
                    format!("        n{i} = {{\n"),
                    "          type = \"local.file\";\n".to_owned(),
                    "          inputs = {\n".to_owned(),
                    format!("            name = \"out/n{i}.txt\";\n"),
                    format!("            contents = resources.r{i}.sha256;\n"),
                    "          };\n".to_owned(),
                    "        };\n".to_owned(),
                ];
                let mut at = end;
                for line in lines {
                    // The cursor at the end of the line just typed.
                    edits.insert(at, &line, at + line.len() - 1);
                    at += line.len();
                }
                edits.restore_at(end);
            }
            Case::DeleteLine => {
                let line_end = mode_line + 1;
                let line_start = text[..mode_line].rfind('\n').unwrap() + 1;
                edits.replace(line_start, line_end, "", line_start);
                edits.restore_at(line_start);
            }
            Case::Paste50 => {
                let end = resource_end(text, i);
                let block: String = (0..50)
                    .map(|k| {
                        format!(
                            "        p{i}x{k} = {{\n          type = \"local.file\";\n          inputs = {{\n            name = \"out/p{i}x{k}.txt\";\n            contents = resources.r{i}.sha256;\n          }};\n        }};\n"
                        )
                    })
                    .collect();
                edits.insert(end, &block, end + block.len());
                edits.restore_at(end);
            }
            Case::Unclosed => {
                let reference = format!("\n            extra = resources.r{}.", i - 1);
                edits.insert(mode_line, &reference, mode_line + reference.len());
                let at = mode_line + reference.len();
                edits.insert(at, " {", at + 2);
                edits.insert(at + 2, " \"", at + 4);
                edits.restore_at(mode_line);
            }
        }
        edits.steps
    }
}

/// Where the line after resource i's declaration starts.
fn resource_end(text: &str, i: usize) -> usize {
    after(text, &format!("\"out/r{i}.txt\""), "\n        };\n")
}

/// The offset of the end of the first `needle` after `anchor`.
fn after(text: &str, anchor: &str, needle: &str) -> usize {
    let from = text.find(anchor).unwrap();
    from + text[from..].find(needle).unwrap() + needle.len()
}

/// Steps built against a copy of the text, so that each is expressed in the text it edits.
struct Edits {
    original: String,
    text: String,
    steps: Vec<Step>,
}

impl Edits {
    fn new(text: &str) -> Edits {
        Edits {
            original: text.to_owned(),
            text: text.to_owned(),
            steps: Vec::new(),
        }
    }

    fn insert(&mut self, at: usize, text: &str, cursor: usize) {
        self.replace(at, at, text, cursor);
    }

    fn replace(&mut self, start: usize, end: usize, text: &str, cursor: usize) {
        self.text.replace_range(start..end, text);
        self.steps.push(Step {
            start,
            end,
            text: text.to_owned(),
            cursor,
        });
    }

    /// One edit from the current text back to the original: the span where they differ.
    fn restore_at(&mut self, cursor: usize) {
        let (now, original) = (self.text.as_bytes(), self.original.as_bytes());
        let prefix = now.iter().zip(original).take_while(|(a, b)| a == b).count();
        let suffix = now[prefix..]
            .iter()
            .rev()
            .zip(original[prefix..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let replacement = self.original[prefix..original.len() - suffix].to_owned();
        self.replace(prefix, now.len() - suffix, &replacement, cursor);
    }
}
