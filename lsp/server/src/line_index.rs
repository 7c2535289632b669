//! Where each line of a document's text starts, to turn LSP positions (a line and a column
//! in UTF-16 code units) into byte offsets and back. Lines end at `\n`, `\r\n` or `\r`, as
//! LSP counts them. Kept across edits: an edit reads again only the starts around what it
//! replaced and moves the others, so that a keystroke in a 100,000-line file costs a copy
//! of the starts at most, and a request converting 100,000 ranges (an outline, semantic
//! tokens) a binary search each.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineIndex {
    /// The byte offset at which each line starts; the first is 0.
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(starts_in(text, 1, text.len()));
        LineIndex { starts }
    }

    /// Follows an edit that replaced bytes `start..old_end` by `inserted` bytes; `text` is
    /// the text after it.
    pub fn edit(&mut self, text: &str, start: usize, old_end: usize, inserted: usize) {
        let delta = inserted as i64 - (old_end - start) as i64;
        // Whether a line starts at p depends on bytes p - 1 and p (a `\r` before a `\n`
        // ends no line), so the starts from `start` to one past the replaced text may change.
        let old = self
            .starts
            .partition_point(|&s| (s as usize) < start.max(1))
            ..self.starts.partition_point(|&s| s as usize <= old_end + 1);
        let new = starts_in(text, start.max(1), (start + inserted + 1).min(text.len()));
        let after = old.end;
        for s in &mut self.starts[after..] {
            *s = (i64::from(*s) + delta) as u32;
        }
        self.starts.splice(old, new);
    }

    /// The byte range of a line, its line break excluded; `None` past the last line.
    pub fn line(&self, text: &str, line: usize) -> Option<std::ops::Range<usize>> {
        let start = *self.starts.get(line)? as usize;
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&next| next as usize);
        let content = &text.as_bytes()[start..end];
        let line_break = match content {
            [.., b'\r', b'\n'] => 2,
            [.., b'\n' | b'\r'] => 1,
            _ => 0,
        };
        Some(start..end - line_break)
    }

    /// The line an offset is on, and where that line starts.
    pub fn line_of(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s as usize <= offset) - 1;
        (line, self.starts[line] as usize)
    }
}

/// The offsets in `from..=to` at which a line starts (`from` at least 1).
fn starts_in(text: &str, from: usize, to: usize) -> impl Iterator<Item = u32> + '_ {
    let bytes = text.as_bytes();
    (from..=to.min(bytes.len()))
        .filter(move |&p| match bytes[p - 1] {
            b'\n' => true,
            b'\r' => bytes.get(p) != Some(&b'\n'),
            _ => false,
        })
        .map(|p| p as u32)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::LineIndex;

    #[test]
    fn lines_end_at_lf_crlf_and_cr_only() {
        let text = "a\nb\r\nc\rd\u{2028}e";
        let index = LineIndex::new(text);
        let lines: Vec<&str> = (0..4)
            .map(|l| &text[index.line(text, l).unwrap()])
            .collect();
        assert_eq!(lines, ["a", "b", "c", "d\u{2028}e"]);
        assert_eq!(index.line_of(3), (1, 2));
        assert_eq!(index.line(text, 4), None);
    }

    proptest! {
        /// After any edit, the same starts as reading the new text whole, including edits
        /// that join or split a `\r\n`.
        #[test]
        fn an_edited_index_is_the_new_texts(
            text in "[a\r\n]{0,30}",
            at in 0usize..40,
            len in 0usize..6,
            inserted in "[b\r\n]{0,6}",
        ) {
            let start = at.min(text.len());
            let end = (start + len).min(text.len());
            let mut index = LineIndex::new(&text);
            let mut edited = text.clone();
            edited.replace_range(start..end, &inserted);
            index.edit(&edited, start, end, inserted.len());
            prop_assert_eq!(index, LineIndex::new(&edited));
        }
    }
}
