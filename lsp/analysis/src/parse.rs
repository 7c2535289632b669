//! Parsing, whole and after an edit, with each syntax error kept inside the innermost set
//! or list around it (docs/architecture/006-contained-parsing.md).
//!
//! rnix recovers from an error by skipping tokens, often past the `}` that closes the set
//! being typed in, so that one unfinished input name rearranges the rest of the file. Here
//! a text that rnix parses without error is rnix's tree. Any other text whose brackets nest
//! is parsed *contained*: every set or list that parses alone as one (a *separable*
//! block) is parsed alone, without its "unexpected end of file" errors, and
//! the text around it sees it as an empty `{}` or `[]`. A block is not separable after
//! `rec` or `let`, before `:` or `@`, or when it does not parse alone to one set or list;
//! then its own blocks are the candidates. When the text around does not
//! take one of its empty blocks for a set or list, that text is parsed whole as rnix does
//! (a *fallback*). Texts whose brackets do not nest are parsed by rnix alone.
//!
//! For an error-free text the contained tree is rnix's tree, block for block, which is why
//! an edit inside a block that was parsed alone can be answered by parsing that block
//! alone again, errors or not: the text around it reads the same empty block as before.
//! [`reparse`] does that, and else the old exact rule: a block whose new text parses alone
//! without error, in a text rnix parsed. Before either, it tries the set's entries the
//! edit touches (`entries`), which also keeps a bracket or string left open inside them.

use rnix::SyntaxKind::{self, *};
use rnix::{ParseError, SyntaxNode, TextRange, TextSize};
use rowan::{GreenNode, NodeOrToken};

use blocks::{Region, Tokens, nests};

/// A text's tree and errors, and what an edit needs to know of how they were made.
#[derive(Clone)]
pub(crate) struct Parsed {
    pub(crate) green: GreenNode,
    pub(crate) errors: Vec<ParseError>,
    shape: Shape,
}

/// How a tree was made.
#[derive(Clone, Debug, Default)]
struct Shape {
    /// Whether the text's brackets (`{}`, `[]`, `()`, `${}`) nest; `None` where an edit
    /// could not tell without counting them all again (then the next one that needs it does).
    balanced: Option<bool>,
    /// In a contained parse: the blocks that were not separable...
    unseparated: Vec<TextRange>,
    /// ...and the texts parsed whole after a fallback (nothing inside them was parsed alone).
    fallbacks: Vec<TextRange>,
    /// Whether an edit left a bracket or string open and the entries around it were
    /// parsed with virtual closers (`entries`): then the tree is not the whole parse's.
    open_entries: bool,
    /// While entries are open: whether the text nested before they were, which it does
    /// again once they are closed if what closes them nests.
    balanced_before_open: Option<bool>,
}

impl Parsed {
    /// Whether this is the tree parsing the text whole gives (see `entries` for when not).
    pub(crate) fn is_whole_parse(&self) -> bool {
        !self.shape.open_entries
    }

    pub(crate) fn new(text: &str) -> Parsed {
        let parse = rnix::Root::parse(text);
        // Known from the start, so that the first broken keystroke need not count the
        // brackets of the whole text (rnix accepts some texts whose brackets do not nest).
        let balanced = Some(nests(text));
        let tokens = match balanced {
            Some(true) if !parse.errors().is_empty() => Tokens::of(text),
            _ => None,
        };
        let Some(tokens) = tokens else {
            return Parsed {
                green: parse.syntax().green().to_owned(),
                errors: parse.errors().to_vec(),
                shape: Shape {
                    balanced,
                    ..Shape::default()
                },
            };
        };
        let mut shape = Shape {
            balanced: Some(true),
            ..Shape::default()
        };
        let region = Region {
            range: TextRange::up_to(TextSize::of(text)),
            children: tokens.top_blocks(),
        };
        let (root, errors) = tokens.parse_region(&region, 0, &mut shape);
        Parsed {
            green: root.green().to_owned(),
            errors,
            shape,
        }
    }
}

/// The parse after replacing `range` of `old`'s text (`old_text`) with `replacement`, giving
/// `new_text`; `None` when only a whole parse can tell.
pub(crate) fn reparse(
    old: &Parsed,
    old_text: &str,
    range: TextRange,
    replacement: &str,
    new_text: &str,
) -> Option<Parsed> {
    if let Some(parsed) = entries::reparse_entries(old, old_text, range, replacement, new_text) {
        return Some(parsed);
    }
    // Entries parsed with virtual closers are only ever reparsed as entries again.
    if old.shape.open_entries {
        return None;
    }
    let root = SyntaxNode::new_root(old.green.clone());
    let covering = match root.covering_element(range) {
        NodeOrToken::Node(node) => node,
        NodeOrToken::Token(token) => token.parent()?,
    };
    let block = covering.ancestors().find(|node| {
        matches!(node.kind(), NODE_ATTR_SET | NODE_LIST)
            && node.text_range().start() < range.start()
            && range.end() < node.text_range().end()
    })?;
    let old_range = block.text_range();
    let new_len = usize::from(old_range.len()) + replacement.len() - usize::from(range.len());
    let start = usize::from(old_range.start());
    let block_text = new_text.get(start..start + new_len)?;
    let delta = new_len as i64 - i64::from(u32::from(old_range.len()));
    // An error-free text, whose block parses alone without error as itself: rnix's exact
    // rule, and an error-free text again.
    if old.errors.is_empty() {
        let parse = rnix::Root::parse(block_text);
        if parse.errors().is_empty()
            && let Some(reparsed) = exact_block(&parse.syntax(), block.kind(), block_text.len())
        {
            // Blocks whose brackets nest leave the whole text's as they were.
            let balanced = old
                .shape
                .balanced
                .filter(|_| nests(block_text) && nests(&old_text[old_range]));
            return Some(Parsed {
                green: block.replace_with(reparsed.green().to_owned()),
                errors: Vec::new(),
                shape: Shape {
                    balanced,
                    ..Shape::default()
                },
            });
        }
    }
    let balanced = old.shape.balanced.unwrap_or_else(|| nests(old_text));
    if balanced && separated(old, &block, old_text) {
        let new_block = contained_block(block_text, block.kind(), block.ancestors().count())?;
        let mut errors = moved_outside(&old.errors, old_range, delta)?;
        errors.extend(new_block.errors.iter().map(|e| moved(e, old_range.start())));
        let shape = if errors.is_empty() {
            Shape {
                balanced: Some(true),
                ..Shape::default()
            }
        } else {
            let keep = |ranges: &[TextRange], inner: &[TextRange]| -> Vec<TextRange> {
                let mut kept: Vec<TextRange> = ranges
                    .iter()
                    .filter_map(|r| moved_range_outside(*r, old_range, delta))
                    .collect();
                kept.extend(inner.iter().map(|r| *r + old_range.start()));
                kept
            };
            Shape {
                balanced: Some(true),
                unseparated: keep(&old.shape.unseparated, &new_block.shape.unseparated),
                fallbacks: keep(&old.shape.fallbacks, &new_block.shape.fallbacks),
                open_entries: false,
                balanced_before_open: None,
            }
        };
        return Some(Parsed {
            green: block.replace_with(new_block.green),
            errors,
            shape,
        });
    }
    // A contained parse whose block was not parsed alone: only the whole text can tell.
    if balanced {
        return None;
    }
    // Brackets that do not nest, so rnix's tree: its exact rule, which also wants the
    // errors to say where they are, and brackets that nest in the old and the new block,
    // so that the whole text's still do not.
    if old.errors.iter().any(|e| error_range(e).is_none()) {
        return None;
    }
    let parse = rnix::Root::parse(block_text);
    let reparsed = exact_block(&parse.syntax(), block.kind(), block_text.len())?;
    if !parse.errors().is_empty() || !nests(block_text) || !nests(&old_text[old_range]) {
        return None;
    }
    Some(Parsed {
        green: block.replace_with(reparsed.green().to_owned()),
        errors: moved_outside(&old.errors, old_range, delta)?,
        shape: Shape {
            balanced: Some(false),
            ..Shape::default()
        },
    })
}

/// Whether `block` of `old` was parsed alone (and so can be again).
fn separated(old: &Parsed, block: &SyntaxNode, old_text: &str) -> bool {
    let range = block.text_range();
    let opener = block.first_token().map(|t| t.kind());
    if !matches!(opener, Some(TOKEN_L_BRACE) | Some(TOKEN_L_BRACK)) {
        return false;
    }
    let neighbour = |token: Option<rnix::SyntaxToken>, forward: bool| {
        let mut token = token;
        while let Some(t) = &token {
            if !t.kind().is_trivia() {
                return Some(t.kind());
            }
            token = if forward {
                t.next_token()
            } else {
                t.prev_token()
            };
        }
        None
    };
    let before = neighbour(block.first_token().and_then(|t| t.prev_token()), false);
    let after = neighbour(block.last_token().and_then(|t| t.next_token()), true);
    if !separable_between(before, after) {
        return false;
    }
    let Some(tokens) = Tokens::of(&old_text[range]) else {
        return false;
    };
    tokens.pairs.first() == Some(&Some(tokens.kinds.len() - 1))
        && !old.shape.unseparated.contains(&range)
        && !old
            .shape
            .fallbacks
            .iter()
            .any(|f| f.contains_range(range) && *f != range)
}

/// A block may be parsed alone unless `rec` or `let` comes before it or `:` or `@` after.
fn separable_between(before: Option<SyntaxKind>, after: Option<SyntaxKind>) -> bool {
    !matches!(before, Some(TOKEN_REC) | Some(TOKEN_LET))
        && !matches!(after, Some(TOKEN_COLON) | Some(TOKEN_AT))
}

/// The contained parse of a block's text alone, when it is separable.
struct Block {
    green: GreenNode,
    errors: Vec<ParseError>,
    shape: Shape,
}

/// `around`: how many nodes hold the block, at least as many as the blocks parsed alone
/// around it; with its own depth they must stay within what is parsed alone, so that the
/// bound of [`blocks::MAX_DEPTH_ALONE`] means the same for the block alone as in its text.
fn contained_block(text: &str, kind: SyntaxKind, around: usize) -> Option<Block> {
    let tokens = Tokens::of(text)?;
    if tokens.pairs.first() != Some(&Some(tokens.kinds.len() - 1))
        || around + tokens.depth >= blocks::MAX_DEPTH_ALONE
    {
        return None;
    }
    let mut shape = Shape::default();
    let (node, errors) = tokens.parse_block(0, 1, &mut shape)?;
    (node.kind() == kind).then(|| Block {
        green: node.green().to_owned(),
        errors,
        shape,
    })
}

/// The one node of kind `kind` a text of `len` bytes parsed to, when it is one.
fn single_node(root: &SyntaxNode, kind: SyntaxKind, len: usize) -> Option<SyntaxNode> {
    let mut children = root.children_with_tokens();
    let node = children.next()?.into_node()?;
    (children.next().is_none()
        && node.kind() == kind
        && usize::from(node.text_range().len()) == len)
        .then_some(node)
}

/// The node a block's text parses to alone without error, when it is one set or list
/// closed by its own bracket, so that the parse never looked past it: in context it
/// parses the same.
fn exact_block(root: &SyntaxNode, kind: SyntaxKind, len: usize) -> Option<SyntaxNode> {
    let node = single_node(root, kind, len)?;
    let closer = if kind == NODE_LIST {
        TOKEN_R_BRACK
    } else {
        TOKEN_R_BRACE
    };
    let closed = node
        .children_with_tokens()
        .last()
        .and_then(|last| last.into_token())
        .is_some_and(|t| t.kind() == closer);
    closed.then_some(node)
}

/// Where a parse error is; `None` for those at the end of the text.
fn error_range(error: &ParseError) -> Option<TextRange> {
    use ParseError::*;
    match error {
        Unexpected(range)
        | UnexpectedExtra(range)
        | UnexpectedWanted(_, range, _)
        | UnexpectedDoubleBind(range)
        | DuplicatedArgs(range, _) => Some(*range),
        _ => None,
    }
}

fn with_range(error: &ParseError, range: TextRange) -> ParseError {
    use ParseError::*;
    match error {
        Unexpected(_) => Unexpected(range),
        UnexpectedExtra(_) => UnexpectedExtra(range),
        UnexpectedWanted(kind, _, wanted) => UnexpectedWanted(*kind, range, wanted.clone()),
        UnexpectedDoubleBind(_) => UnexpectedDoubleBind(range),
        DuplicatedArgs(_, name) => DuplicatedArgs(range, name.clone()),
        other => other.clone(),
    }
}

/// An error moved forward by `by`.
fn moved(error: &ParseError, by: TextSize) -> ParseError {
    match error_range(error) {
        Some(range) => with_range(error, range + by),
        None => error.clone(),
    }
}

/// A range outside `block` after the block's length changed by `delta`: as it was before
/// it, moved after it, grown or shrunk around it; `None` inside it.
fn moved_range_outside(range: TextRange, block: TextRange, delta: i64) -> Option<TextRange> {
    let shift = |at: TextSize| TextSize::from((i64::from(u32::from(at)) + delta) as u32);
    if range.end() <= block.start() {
        Some(range)
    } else if range.start() >= block.end() {
        Some(TextRange::new(shift(range.start()), shift(range.end())))
    } else if range.contains_range(block) && range != block {
        Some(TextRange::new(range.start(), shift(range.end())))
    } else {
        None
    }
}

/// The errors outside `block`, moved for its new length; `None` when one straddles it.
fn moved_outside(errors: &[ParseError], block: TextRange, delta: i64) -> Option<Vec<ParseError>> {
    let mut kept = Vec::new();
    for error in errors {
        match error_range(error) {
            // Errors at the end of the text stay there.
            None => kept.push(error.clone()),
            Some(range) if block.contains_range(range) => {}
            Some(range) if range.end() <= block.start() || range.start() >= block.end() => {
                let moved = moved_range_outside(range, block, delta)?;
                kept.push(with_range(error, moved));
            }
            Some(_) => return None,
        }
    }
    Some(kept)
}

mod blocks;
mod entries;
#[cfg(test)]
mod tests;
