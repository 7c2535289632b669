//! An open document: its text in a rope, edited in place by full or incremental changes,
//! its analysis for that text, and its line index: LSP positions (UTF-16 code units) to
//! byte offsets and back, which [`crate::to_proto`] and [`crate::from_proto`] build on. Cloning is cheap (the rope and the analysis are shared), so a
//! request works on a snapshot while edits go on.

use std::sync::Arc;

use lsp_types::{Position, TextDocumentContentChangeEvent};
use nixops4_analysis::{Analysis, TextRange, TextSize};
use ropey::Rope;

#[derive(Clone)]
pub struct Document {
    text: Rope,
    version: i32,
    analysis: Arc<Analysis>,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Document {
        Document {
            text: Rope::from_str(text),
            version,
            analysis: Arc::new(Analysis::new(text)),
        }
    }

    /// A document for text already analysed (a file on disk), for positions in it.
    pub fn from_analysis(analysis: Arc<Analysis>) -> Document {
        Document {
            text: Rope::from_str(analysis.text()),
            version: 0,
            analysis,
        }
    }

    pub fn text(&self) -> String {
        self.text.to_string()
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    /// The analysis of the current text.
    pub fn analysis(&self) -> &Arc<Analysis> {
        &self.analysis
    }

    /// Applies a notification's changes in order, updating the analysis with each (which
    /// reparses only the block around an incremental edit when it can).
    pub fn change(&mut self, changes: &[TextDocumentContentChangeEvent], version: i32) {
        for change in changes {
            let analysis = match change.range {
                Some(range) => {
                    let start = self.text.char_to_byte(self.char_index(range.start));
                    let end = self
                        .text
                        .char_to_byte(self.char_index(range.end))
                        .max(start);
                    let replaced =
                        TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32));
                    // The analysis is edited in place unless a request still reads it.
                    let analysis = std::mem::replace(&mut self.analysis, empty_analysis());
                    Arc::unwrap_or_clone(analysis).edit(replaced, &change.text)
                }
                None => Analysis::new(&change.text),
            };
            self.apply(change);
            self.analysis = Arc::new(analysis);
        }
        self.version = version;
    }

    /// Applies one change. A change whose range lies outside the text is clamped to it,
    /// so a confused client cannot make the server fail.
    fn apply(&mut self, change: &TextDocumentContentChangeEvent) {
        match change.range {
            None => self.text = Rope::from_str(&change.text),
            Some(range) => {
                let start = self.char_index(range.start);
                let end = self.char_index(range.end).max(start);
                self.text.remove(start..end);
                self.text.insert(start, &change.text);
            }
        }
    }

    /// The char index of a position; a position past a line's end is its end.
    fn char_index(&self, position: Position) -> usize {
        let line = position.line as usize;
        if line >= self.text.len_lines() {
            return self.text.len_chars();
        }
        let line_start = self.text.line_to_char(line);
        let line_text = self.text.line(line);
        let line_len_utf16 = line_text.len_utf16_cu();
        let unit = (position.character as usize).min(line_len_utf16);
        let mut chars = line_text.utf16_cu_to_char(unit);
        // Never inside the line break.
        let content = line_text.len_chars() - line_break_len(&line_text.to_string());
        chars = chars.min(content);
        line_start + chars
    }

    /// The byte offset of a position.
    pub fn offset(&self, position: Position) -> usize {
        self.text.char_to_byte(self.char_index(position))
    }

    /// The position of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len_bytes());
        let char_index = self.text.byte_to_char(offset);
        let line = self.text.char_to_line(char_index);
        let line_start = self.text.line_to_char(line);
        let character =
            self.text.char_to_utf16_cu(char_index) - self.text.char_to_utf16_cu(line_start);
        Position {
            line: line as u32,
            character: character as u32,
        }
    }
}

/// A stand-in while the document's analysis is being edited.
fn empty_analysis() -> Arc<Analysis> {
    static EMPTY: std::sync::LazyLock<Arc<Analysis>> =
        std::sync::LazyLock::new(|| Arc::new(Analysis::new("")));
    EMPTY.clone()
}

fn line_break_len(line: &str) -> usize {
    if line.ends_with("\r\n") {
        2
    } else if line.ends_with('\n') || line.ends_with('\r') {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::Range;

    fn change(start: (u32, u32), end: (u32, u32), text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range {
                start: Position {
                    line: start.0,
                    character: start.1,
                },
                end: Position {
                    line: end.0,
                    character: end.1,
                },
            }),
            range_length: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn positions_count_utf16_units() {
        let document = Document::new("a😀b\r\nç", 0);
        // The emoji is two UTF-16 units and four bytes.
        assert_eq!(
            document.offset(Position {
                line: 0,
                character: 3
            }),
            5
        );
        assert_eq!(
            document.position(5),
            Position {
                line: 0,
                character: 3
            }
        );
        assert_eq!(
            document.offset(Position {
                line: 1,
                character: 1
            }),
            "a😀b\r\nç".len()
        );
        // Past the line's end: the end of its content, not inside the CRLF.
        assert_eq!(
            document.offset(Position {
                line: 0,
                character: 99
            }),
            6
        );
    }

    #[test]
    fn incremental_changes_apply_in_place() {
        let mut document = Document::new("hello\nworld", 0);
        document.apply(&change((1, 0), (1, 5), "wörld"));
        document.apply(&change((0, 5), (0, 5), ", 😀"));
        assert_eq!(document.text(), "hello, 😀\nwörld");
        document.apply(&change((9, 9), (9, 9), "!"));
        assert_eq!(document.text(), "hello, 😀\nwörld!");
    }
}
