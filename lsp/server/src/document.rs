//! An open document: its analysis (which holds its text), edited in place by full or
//! incremental changes, and the starts of its lines: LSP positions (UTF-16 code units) to
//! byte offsets and back, which [`crate::to_proto`] and [`crate::from_proto`] build on.
//! Cloning is cheap (the analysis and the line starts are shared), so a request works on a
//! snapshot while edits go on.

use std::sync::{Arc, Weak};

use lsp_types::{Position, TextDocumentContentChangeEvent};
use nixops4_analysis::{Analysis, TextRange, TextSize};

use crate::line_index::LineIndex;

#[derive(Clone)]
pub struct Document {
    version: i32,
    analysis: Arc<Analysis>,
    lines: Arc<LineIndex>,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Document {
        Document::from_analysis(Arc::new(Analysis::new(text)), version)
    }

    /// A document for text already analysed (a file on disk, at version 0), for positions
    /// in it.
    pub fn from_analysis(analysis: Arc<Analysis>, version: i32) -> Document {
        Document {
            version,
            lines: Arc::new(LineIndex::new(analysis.text())),
            analysis,
        }
    }

    pub fn text(&self) -> &str {
        self.analysis.text()
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    /// The analysis of the current text.
    pub fn analysis(&self) -> &Arc<Analysis> {
        &self.analysis
    }

    /// The document for a request that runs later and must not hold up an edit meanwhile.
    pub fn later(&self) -> LaterDocument {
        LaterDocument {
            version: self.version,
            analysis: Arc::downgrade(&self.analysis),
            lines: Arc::downgrade(&self.lines),
        }
    }

    /// Whether the editor's document has moved on from this one: nothing else holds its
    /// analysis, so an edit replaced it (with a copy) while a request held it. An answer
    /// computed from it is for an old version.
    pub fn is_superseded(&self) -> bool {
        Arc::strong_count(&self.analysis) == 1
    }

    /// Whether the line starts are those of the text (for `nixops4/documentText`, which
    /// tests use to check that no edit was misapplied).
    pub fn lines_match_text(&self) -> bool {
        *self.lines == LineIndex::new(self.text())
    }

    /// Applies a notification's changes in order, updating the analysis with each (which
    /// reparses only the block around an incremental edit when it can). A change whose
    /// range lies outside the text is clamped to it, so a confused client cannot make the
    /// server fail.
    pub fn change(&mut self, changes: &[TextDocumentContentChangeEvent], version: i32) {
        for change in changes {
            match change.range {
                Some(range) => {
                    let start = self.offset(range.start);
                    let end = self.offset(range.end).max(start);
                    let replaced =
                        TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32));
                    // The analysis is edited in place unless a request still reads it.
                    let analysis = std::mem::replace(&mut self.analysis, empty_analysis());
                    self.analysis =
                        Arc::new(Arc::unwrap_or_clone(analysis).edit(replaced, &change.text));
                    Arc::make_mut(&mut self.lines).edit(
                        self.analysis.text(),
                        start,
                        end,
                        change.text.len(),
                    );
                }
                None => {
                    self.analysis = Arc::new(Analysis::new(&change.text));
                    self.lines = Arc::new(LineIndex::new(&change.text));
                }
            }
        }
        self.version = version;
    }

    /// The byte offset of a position: a position past a line's end is its end (never
    /// inside the line break), one past the last line the end of the text.
    pub fn offset(&self, position: Position) -> usize {
        let text = self.text();
        let Some(line) = self.lines.line(text, position.line as usize) else {
            return text.len();
        };
        let wanted = position.character as usize;
        let mut units = 0;
        for (i, c) in text[line.clone()].char_indices() {
            units += c.len_utf16();
            // Inside a character (between the halves of a surrogate pair): its start.
            if units > wanted {
                return line.start + i;
            }
        }
        line.end
    }

    /// The position of a byte offset (one inside a character counts from its start).
    pub fn position(&self, offset: usize) -> Position {
        let text = self.text();
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, start) = self.lines.line_of(offset);
        let before = &text[start..offset];
        let character = if before.is_ascii() {
            before.len()
        } else {
            before.chars().map(char::len_utf16).sum()
        };
        Position {
            line: line as u32,
            character: character as u32,
        }
    }
}

/// A document as a request about the whole of it holds it until the request runs: without
/// keeping its analysis alive, so that an edit in between neither waits for the request nor
/// copies the analysis. The request is then answered "content modified".
pub struct LaterDocument {
    version: i32,
    analysis: Weak<Analysis>,
    lines: Weak<LineIndex>,
}

impl LaterDocument {
    /// The document, unless an edit consumed it.
    pub fn now(&self) -> Option<Document> {
        Some(Document {
            version: self.version,
            analysis: self.analysis.upgrade()?,
            lines: self.lines.upgrade()?,
        })
    }
}

/// A stand-in while the document's analysis is being edited.
fn empty_analysis() -> Arc<Analysis> {
    static EMPTY: std::sync::LazyLock<Arc<Analysis>> =
        std::sync::LazyLock::new(|| Arc::new(Analysis::new("")));
    EMPTY.clone()
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
    fn a_document_held_for_later_is_gone_once_edited() {
        let mut document = Document::new("{ a = 1; }", 1);
        let later = document.later();
        assert_eq!(later.now().map(|d| d.version()), Some(1));
        document.change(&[change((0, 6), (0, 7), "2")], 2);
        assert!(later.now().is_none());
        // Edited in place: nothing else held the analysis.
        assert_eq!(document.text(), "{ a = 2; }");
    }

    /// A request that holds the document through an edit sees that its answer would be
    /// about an old version; one that does not, that it is current.
    #[test]
    fn a_document_edited_while_held_is_superseded() {
        let mut document = Document::new("{ a = 1; }", 1);
        let held = document.later().now().expect("not edited yet");
        assert!(!held.is_superseded());
        document.change(&[change((0, 6), (0, 7), "2")], 2);
        assert!(held.is_superseded());
        assert_eq!(held.text(), "{ a = 1; }");
        assert_eq!(document.text(), "{ a = 2; }");
    }

    #[test]
    fn incremental_changes_apply_in_place() {
        let mut document = Document::new("hello\nworld", 0);
        document.change(&[change((1, 0), (1, 5), "wörld")], 1);
        document.change(&[change((0, 5), (0, 5), ", 😀")], 2);
        assert_eq!(document.text(), "hello, 😀\nwörld");
        document.change(&[change((9, 9), (9, 9), "!")], 3);
        assert_eq!(document.text(), "hello, 😀\nwörld!");
        assert!(document.lines_match_text());
    }
}
