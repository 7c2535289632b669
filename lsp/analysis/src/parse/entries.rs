//! Reparsing only the entries of a set that an edit touches, so that typing between two of
//! ten thousand resources costs what the typed resource costs
//! (docs/architecture/006-contained-parsing.md).
//!
//! The entries an edit touches, with the trivia between them, are parsed alone inside a
//! `{` `}` of their own, and the nodes that parse gives take their place among the set's
//! children. Two cases:
//! - Their new text nests and parses without error, and the old text's errors (if any)
//!   were all among them: the result is rnix's tree of the whole new text, because a set's
//!   entry is parsed from its own tokens alone.
//! - Their new text opens a bracket or a string it does not close (a resource typed line
//!   by line, `inputs = {` before its `};`): what is left open is closed by virtual
//!   closers at the end of the entries, parsed, and the closers taken out of the tree
//!   again, with one error on each opening that was not closed. The entries after them
//!   stay entries of the set, as the user's indentation says, instead of being swallowed
//!   by the unclosed bracket as a whole parse would have them. This tree depends on the
//!   text before the edit too: reopening the file parses it whole.
//!
//! Anything else (an error in a text whose brackets nest) is left to the block reparse.

use rnix::SyntaxKind::{self, *};
use rnix::{ParseError, SyntaxNode, TextRange, TextSize};
use rowan::{GreenNode, GreenToken, Language, NodeOrToken};

type GreenElement = NodeOrToken<GreenNode, GreenToken>;

use crate::syntax::{children_from, set_around};

use super::blocks::nests;

use super::{
    Parsed, Shape, error_range, moved, moved_outside, moved_range_outside, single_node, with_range,
};

/// The parse after replacing `range` of `old`'s text with `replacement`, giving
/// `new_text`, by reparsing the entries of the innermost set around the edit; `None` when
/// that is not sure to be right (see the module's comment).
pub(super) fn reparse_entries(
    old: &Parsed,
    old_text: &str,
    range: TextRange,
    replacement: &str,
    new_text: &str,
) -> Option<Parsed> {
    let root = SyntaxNode::new_root(old.green.clone());
    let set = set_around(&root, range)?;
    // Only the children around the edit are looked at (the set may have ten thousand).
    let green = set.green();
    let open = green
        .children()
        .position(|child| rnix::NixLanguage::kind_from_raw(child.kind()) == TOKEN_L_BRACE)?;
    let close = green.children().len() - 1;
    let touched: Vec<(usize, TextRange)> = children_from(&set, range.start())
        .map(|child| (child.index(), child.text_range()))
        .take_while(|(_, child)| child.start() <= range.end())
        .filter(|(k, _)| open < *k && *k < close)
        .collect();
    let (first, last, old_region) = match (touched.first(), touched.last()) {
        (Some(&(first, first_range)), Some(&(last, last_range))) => {
            let spanned = TextRange::new(first_range.start(), last_range.end());
            (first, last + 1, spanned)
        }
        // An empty set: the edit is all there is between its braces.
        _ => (open + 1, open + 1, range),
    };
    let new_len = usize::from(old_region.len()) + replacement.len() - usize::from(range.len());
    let start = usize::from(old_region.start());
    let region_text = new_text.get(start..start + new_len)?;
    let unclosed = unclosed(region_text)?;
    let errors_inside = old
        .errors
        .iter()
        .all(|e| error_range(e).is_some_and(|r| old_region.contains_range(r)));
    if unclosed.is_empty() && !errors_inside {
        return None;
    }

    let (entries, errors_in_region) = match parse_entries(region_text, &unclosed) {
        Some(parsed) => parsed,
        // What is left open swallows even the set's closer: the entries are one error.
        None if !unclosed.is_empty() => (vec![error_node(region_text)], Vec::new()),
        None => return None,
    };
    let new_set = set.green().splice_children(first..last, entries);
    let green = set.replace_with(new_set);

    if unclosed.is_empty() {
        return Some(Parsed {
            green,
            errors: Vec::new(),
            shape: Shape {
                // rnix accepts some texts whose brackets do not nest: what they do outside
                // these entries is still so. Entries that were open and are closed now
                // leave the text as it was before they were opened.
                balanced: if old.shape.open_entries {
                    old.shape.balanced_before_open
                } else {
                    old.shape.balanced
                }
                .filter(|_| {
                    (old.shape.open_entries || nests(&old_text[old_region])) && nests(region_text)
                }),
                ..Shape::default()
            },
        });
    }
    let delta = new_len as i64 - i64::from(u32::from(old_region.len()));
    let mut errors = moved_outside(&old.errors, old_region, delta)?;
    errors.extend(
        errors_in_region
            .iter()
            .map(|e| moved(e, old_region.start())),
    );
    errors.extend(unclosed.iter().map(|opening| {
        ParseError::UnexpectedWanted(
            opening.kind,
            opening.range + old_region.start(),
            Box::new([opening.closing_kind]),
        )
    }));
    let moved = |ranges: &[TextRange]| -> Vec<TextRange> {
        ranges
            .iter()
            .filter_map(|r| moved_range_outside(*r, old_region, delta))
            .collect()
    };
    Some(Parsed {
        green,
        errors,
        shape: Shape {
            balanced: Some(false),
            unseparated: moved(&old.shape.unseparated),
            fallbacks: moved(&old.shape.fallbacks),
            open_entries: true,
            balanced_before_open: if old.shape.open_entries {
                old.shape.balanced_before_open
            } else {
                old.shape.balanced.filter(|_| nests(&old_text[old_region]))
            },
        },
    })
}

/// The entries of `text` (set entries and the trivia between them), parsed inside a
/// `{` `}` of their own, with what it leaves `unclosed` closed by virtual closers (and a
/// virtual `;` after each that closes a binding's value, and after the last) that are
/// taken out again; and the errors in the text, from its start.
/// `None` when the parse does not end with the `}` around (or has errors while nothing
/// is left open).
fn parse_entries(text: &str, unclosed: &[Opening]) -> Option<(Vec<GreenElement>, Vec<ParseError>)> {
    let mut wrapped = String::with_capacity(text.len() + unclosed.len() * 2 + 3);
    wrapped.push('{');
    wrapped.push_str(text);
    let mut virtual_tokens = Vec::new();
    for opening in unclosed.iter().rev() {
        let ending = opening.after_assign.then_some(";");
        for token in std::iter::once(opening.closer).chain(ending) {
            virtual_tokens.push((TextSize::of(wrapped.as_str()), token));
            wrapped.push_str(token);
        }
    }
    // The entry the outermost opening is in ends too.
    if virtual_tokens
        .last()
        .is_some_and(|(_, token)| *token != ";")
    {
        virtual_tokens.push((TextSize::of(wrapped.as_str()), ";"));
        wrapped.push(';');
    }
    wrapped.push('}');
    let parse = rnix::Root::parse(&wrapped);
    if unclosed.is_empty() && !parse.errors().is_empty() {
        return None;
    }
    let mut green = single_node(&parse.syntax(), NODE_ATTR_SET, wrapped.len())?
        .green()
        .to_owned();
    for (at, token) in virtual_tokens.iter().rev() {
        green = without_token(green, *at, token)?;
    }
    let kinds: Vec<SyntaxKind> = green
        .children()
        .map(|c| rnix::NixLanguage::kind_from_raw(c.kind()))
        .collect();
    if kinds.len() < 2 || kinds[0] != TOKEN_L_BRACE || kinds[kinds.len() - 1] != TOKEN_R_BRACE {
        return None;
    }
    let entries: Vec<_> = green
        .children()
        .skip(1)
        .take(kinds.len() - 2)
        .map(|c| c.to_owned())
        .collect();
    let len: usize = entries.iter().map(|e| usize::from(e.text_len())).sum();
    if len != text.len() {
        return None;
    }
    let inside = TextRange::at(TextSize::from(1), TextSize::of(text));
    let errors = parse
        .errors()
        .iter()
        .filter_map(|e| {
            let r = error_range(e).filter(|r| inside.contains_range(*r))?;
            Some(with_range(e, r - TextSize::from(1)))
        })
        .collect();
    Some((entries, errors))
}

/// `text`'s tokens as one error node.
fn error_node(text: &str) -> GreenElement {
    let tokens: Vec<GreenElement> = rnix::tokenize(text)
        .map(|(kind, piece)| {
            NodeOrToken::Token(GreenToken::new(rnix::NixLanguage::kind_to_raw(kind), piece))
        })
        .collect();
    NodeOrToken::Node(GreenNode::new(
        rnix::NixLanguage::kind_to_raw(NODE_ERROR),
        tokens,
    ))
}

/// A bracket or string a text opens and does not close.
struct Opening {
    kind: SyntaxKind,
    range: TextRange,
    closer: &'static str,
    closing_kind: SyntaxKind,
    /// Whether it opens a binding's value (`name = {`), which a `;` ends.
    after_assign: bool,
}

/// What `text` leaves open, outermost first; `None` when it closes something it did not
/// open (then its entries are not all it changes).
fn unclosed(text: &str) -> Option<Vec<Opening>> {
    let mut open: Vec<Opening> = Vec::new();
    let mut at = TextSize::from(0);
    let mut previous = None;
    for (kind, piece) in rnix::tokenize(text) {
        let range = TextRange::at(at, TextSize::of(piece));
        at = range.end();
        let after_assign = previous == Some(TOKEN_ASSIGN);
        if !kind.is_trivia() {
            previous = Some(kind);
        }
        let (closer, closing_kind) = match kind {
            TOKEN_L_BRACE => ("}", TOKEN_R_BRACE),
            TOKEN_L_BRACK => ("]", TOKEN_R_BRACK),
            TOKEN_L_PAREN => (")", TOKEN_R_PAREN),
            TOKEN_INTERPOL_START => ("}", TOKEN_INTERPOL_END),
            TOKEN_STRING_START if piece == "''" => ("''", TOKEN_STRING_END),
            TOKEN_STRING_START => ("\"", TOKEN_STRING_END),
            TOKEN_R_BRACE | TOKEN_R_BRACK | TOKEN_R_PAREN | TOKEN_INTERPOL_END
            | TOKEN_STRING_END => {
                if open.pop()?.closing_kind != kind {
                    return None;
                }
                continue;
            }
            _ => continue,
        };
        open.push(Opening {
            kind,
            range,
            closer,
            closing_kind,
            after_assign,
        });
    }
    Some(open)
}

/// `green` without the token `text` that starts at `at`; `None` when there is no such
/// token (the virtual closer was read as part of something else).
fn without_token(green: GreenNode, at: TextSize, text: &str) -> Option<GreenNode> {
    let root = SyntaxNode::new_root(green);
    let token = root.token_at_offset(at).right_biased()?;
    if token.text_range().start() != at || token.text() != text {
        return None;
    }
    let parent = token.parent()?;
    Some(parent.replace_with(parent.green().remove_child(token.index())))
}
