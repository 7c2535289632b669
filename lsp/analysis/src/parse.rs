//! Parsing, whole and after an edit, with each syntax error kept inside the innermost set
//! or list around it (docs/architecture/004-contained-parsing.md).
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
//! without error, in a text rnix parsed.

use rnix::SyntaxKind::{self, *};
use rnix::{ParseError, SyntaxNode, TextRange, TextSize};
use rowan::{GreenNode, NodeOrToken};

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
    /// Whether the text's brackets (`{}`, `[]`, `()`, `${}`) nest.
    balanced: bool,
    /// In a contained parse: the blocks that were not separable...
    unseparated: Vec<TextRange>,
    /// ...and the texts parsed whole after a fallback (nothing inside them was parsed alone).
    fallbacks: Vec<TextRange>,
}

impl Parsed {
    pub(crate) fn new(text: &str) -> Parsed {
        let parse = rnix::Root::parse(text);
        let tokens = if parse.errors().is_empty() {
            None
        } else {
            Tokens::of(text)
        };
        let Some(tokens) = tokens else {
            return Parsed {
                green: parse.syntax().green().to_owned(),
                errors: parse.errors().to_vec(),
                shape: Shape {
                    balanced: nests(text),
                    ..Shape::default()
                },
            };
        };
        let mut shape = Shape {
            balanced: true,
            ..Shape::default()
        };
        let top: Vec<usize> = tokens.top_blocks();
        let region = Region {
            range: TextRange::up_to(TextSize::of(text)),
            children: top,
        };
        let (root, errors) = tokens.parse_region(&region, &mut shape);
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
    if old.shape.balanced && separated(old, &block, old_text) {
        let new_block = contained_block(block_text, block.kind())?;
        let mut errors = moved_outside(&old.errors, old_range, delta)?;
        errors.extend(new_block.errors.iter().map(|e| moved(e, old_range.start())));
        let shape = if errors.is_empty() {
            Shape {
                balanced: true,
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
                balanced: true,
                unseparated: keep(&old.shape.unseparated, &new_block.shape.unseparated),
                fallbacks: keep(&old.shape.fallbacks, &new_block.shape.fallbacks),
            }
        };
        return Some(Parsed {
            green: block.replace_with(new_block.green),
            errors,
            shape,
        });
    }
    // A tree rnix made (no error, or brackets that do not nest): rnix's exact rule, which
    // also wants the errors to say where they are.
    if (old.shape.balanced && !old.errors.is_empty())
        || old.errors.iter().any(|e| error_range(e).is_none())
    {
        return None;
    }
    let parse = rnix::Root::parse(block_text);
    let reparsed = exact_block(&parse.syntax(), block.kind(), block_text.len())?;
    if !parse.errors().is_empty() {
        return None;
    }
    // Brackets that nest in both the old and the new block leave the whole text's nesting
    // or not as it was; otherwise the whole text must be looked at.
    if !nests(block_text) || !nests(&old_text[old_range]) {
        return None;
    }
    let balanced = old.shape.balanced;
    Some(Parsed {
        green: block.replace_with(reparsed.green().to_owned()),
        errors: moved_outside(&old.errors, old_range, delta)?,
        shape: Shape {
            balanced,
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

fn contained_block(text: &str, kind: SyntaxKind) -> Option<Block> {
    let tokens = Tokens::of(text)?;
    if tokens.pairs.first() != Some(&Some(tokens.kinds.len() - 1)) {
        return None;
    }
    let mut shape = Shape::default();
    let (node, errors) = tokens.parse_block(0, &mut shape)?;
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

/// Whether a text's brackets nest (what [`Tokens::of`] tells, without keeping the tokens).
fn nests(text: &str) -> bool {
    let mut open: Vec<SyntaxKind> = Vec::new();
    for (kind, _) in rnix::tokenize(text) {
        let opener = match kind {
            TOKEN_L_BRACE | TOKEN_L_BRACK | TOKEN_L_PAREN | TOKEN_INTERPOL_START => {
                open.push(kind);
                continue;
            }
            other => match opener_of(other) {
                Some(opener) => opener,
                None => continue,
            },
        };
        if open.pop() != Some(opener) {
            return false;
        }
    }
    open.is_empty()
}

/// The opening bracket a closing one closes.
fn opener_of(closer: SyntaxKind) -> Option<SyntaxKind> {
    match closer {
        TOKEN_R_BRACE => Some(TOKEN_L_BRACE),
        TOKEN_R_BRACK => Some(TOKEN_L_BRACK),
        TOKEN_R_PAREN => Some(TOKEN_L_PAREN),
        TOKEN_INTERPOL_END => Some(TOKEN_INTERPOL_START),
        _ => None,
    }
}

/// A text's tokens, with the bracket that closes each opening one.
struct Tokens<'t> {
    text: &'t str,
    kinds: Vec<SyntaxKind>,
    ranges: Vec<TextRange>,
    /// For each token, the index of its closing bracket when it opens one.
    pairs: Vec<Option<usize>>,
}

/// A text parsed as one: the whole text or a block, and the blocks inside it to parse alone.
struct Region {
    range: TextRange,
    /// Indices of the opening tokens of the candidate blocks directly inside.
    children: Vec<usize>,
}

impl<'t> Tokens<'t> {
    /// `None` when the brackets do not nest.
    fn of(text: &'t str) -> Option<Tokens<'t>> {
        let (mut kinds, mut ranges) = (Vec::new(), Vec::new());
        let mut at = TextSize::from(0);
        for (kind, piece) in rnix::tokenize(text) {
            let len = TextSize::of(piece);
            kinds.push(kind);
            ranges.push(TextRange::at(at, len));
            at += len;
        }
        let mut pairs = vec![None; kinds.len()];
        let mut open: Vec<usize> = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let opener = match kind {
                TOKEN_L_BRACE | TOKEN_L_BRACK | TOKEN_L_PAREN | TOKEN_INTERPOL_START => {
                    open.push(i);
                    continue;
                }
                other => match opener_of(*other) {
                    Some(opener) => opener,
                    None => continue,
                },
            };
            let o = open.pop().filter(|o| kinds[*o] == opener)?;
            pairs[o] = Some(i);
        }
        open.is_empty().then_some(Tokens {
            text,
            kinds,
            ranges,
            pairs,
        })
    }

    fn is_block(&self, i: usize) -> bool {
        matches!(self.kinds[i], TOKEN_L_BRACE | TOKEN_L_BRACK)
    }

    /// The blocks not inside another block, in order.
    fn top_blocks(&self) -> Vec<usize> {
        self.blocks_within(0, self.kinds.len())
    }

    /// The blocks between tokens `from` and `to` not inside another block there.
    fn blocks_within(&self, from: usize, to: usize) -> Vec<usize> {
        let mut blocks = Vec::new();
        let mut i = from;
        while i < to {
            if self.is_block(i) {
                blocks.push(i);
                i = self.pairs[i].expect("a closed block") + 1;
            } else {
                i += 1;
            }
        }
        blocks
    }

    fn non_trivia(&self, mut i: Option<usize>, forward: bool) -> Option<SyntaxKind> {
        while let Some(at) = i {
            let kind = *self.kinds.get(at)?;
            if !kind.is_trivia() {
                return Some(kind);
            }
            i = if forward {
                at.checked_add(1)
            } else {
                at.checked_sub(1)
            };
        }
        None
    }

    /// The contained parse of the block opened by token `open`, when it is separable
    /// (its neighbours are the caller's to check).
    fn parse_block(&self, open: usize, shape: &mut Shape) -> Option<(SyntaxNode, Vec<ParseError>)> {
        let close = self.pairs[open]?;
        let range = TextRange::new(self.ranges[open].start(), self.ranges[close].end());
        let region = Region {
            range,
            children: self.blocks_within(open + 1, close),
        };
        let mut inner = Shape::default();
        let (root, errors) = self.parse_region(&region, &mut inner);
        let kind = if self.kinds[open] == TOKEN_L_BRACK {
            NODE_LIST
        } else {
            NODE_ATTR_SET
        };
        let node = single_node(&root, kind, usize::from(range.len()))?;
        // Too deep to parse: only the whole text can say where.
        if errors
            .iter()
            .any(|e| matches!(e, ParseError::RecursionLimitExceeded))
        {
            return None;
        }
        // Its end is not the end of the file: the error that made the parse run past its
        // closing bracket says what is wrong, with a place.
        let errors = errors
            .into_iter()
            .filter(|e| error_range(e).is_some())
            .collect();
        shape.unseparated.extend(inner.unseparated);
        shape.fallbacks.extend(inner.fallbacks);
        Some((node, errors))
    }

    /// Parses a region with its separable blocks alone, each seen as `{}` or `[]` by the
    /// text around; errors and recorded ranges are from the start of the whole text.
    fn parse_region(&self, region: &Region, shape: &mut Shape) -> (SyntaxNode, Vec<ParseError>) {
        // The separable blocks, alone; the others' blocks are candidates in their place.
        let mut alone: Vec<(usize, GreenNode, Vec<ParseError>)> = Vec::new();
        let mut inner = Shape::default();
        let mut candidates = region.children.clone();
        candidates.reverse();
        while let Some(open) = candidates.pop() {
            let close = self.pairs[open].expect("a closed block");
            let separable = separable_between(
                self.non_trivia(open.checked_sub(1), false),
                self.non_trivia(Some(close + 1), true),
            );
            match separable
                .then(|| self.parse_block(open, &mut inner))
                .flatten()
            {
                Some((node, errors)) => alone.push((open, node.green().to_owned(), errors)),
                None => {
                    inner.unseparated.push(TextRange::new(
                        self.ranges[open].start(),
                        self.ranges[close].end(),
                    ));
                    let mut nested = self.blocks_within(open + 1, close);
                    nested.reverse();
                    candidates.extend(nested);
                }
            }
        }
        alone.sort_by_key(|(open, _, _)| *open);
        // The region's text with each block alone left as an empty one.
        let mut compact = String::with_capacity(usize::from(region.range.len()));
        let mut cursor = region.range.start();
        // (where the empty block is in `compact`, where the block is in the text)
        let mut places: Vec<(TextRange, TextRange)> = Vec::new();
        for (open, _, _) in &alone {
            let close = self.pairs[*open].expect("a closed block");
            let (from, to) = (self.ranges[*open], self.ranges[close]);
            compact.push_str(&self.text[TextRange::new(cursor, from.end())]);
            let at = TextSize::of(compact.as_str()) - from.len();
            compact.push_str(&self.text[to]);
            places.push((
                TextRange::at(at, TextSize::from(2)),
                TextRange::new(from.start(), to.end()),
            ));
            cursor = to.end();
        }
        compact.push_str(&self.text[TextRange::new(cursor, region.range.end())]);
        let parse = rnix::Root::parse(&compact);
        let swaps: Vec<(TextRange, GreenNode)> = places
            .iter()
            .zip(&alone)
            .map(|((empty, _), (_, green, _))| (*empty, green.clone()))
            .collect();
        let mut swapped = 0;
        let green = rebuild(&parse.syntax(), &swaps, &mut swapped);
        if swapped != swaps.len() {
            // The text around took an empty block for something else: parse it whole.
            shape.fallbacks.push(region.range);
            let whole = rnix::Root::parse(&self.text[region.range]);
            let errors = whole
                .errors()
                .iter()
                .map(|e| moved(e, region.range.start()))
                .collect();
            return (whole.syntax(), errors);
        }
        shape.unseparated.extend(inner.unseparated);
        shape.fallbacks.extend(inner.fallbacks);
        // Errors of the text around, from compact offsets to the text's.
        let to_text = |at: TextSize| {
            let mut moved = at + region.range.start();
            for (empty, block) in &places {
                if empty.end() <= at {
                    moved += block.len() - empty.len();
                }
            }
            moved
        };
        let mut errors: Vec<ParseError> = parse
            .errors()
            .iter()
            .map(|e| match error_range(e) {
                Some(r) => with_range(e, TextRange::new(to_text(r.start()), to_text(r.end()))),
                None => e.clone(),
            })
            .collect();
        for (_, _, block_errors) in alone {
            errors.extend(block_errors);
        }
        (SyntaxNode::new_root(green), errors)
    }
}

/// `node`'s green tree with the nodes at the ranges of `swaps` (from the start of the root,
/// sorted) replaced, each only when it is a set or list; counts those replaced.
fn rebuild(node: &SyntaxNode, swaps: &[(TextRange, GreenNode)], swapped: &mut usize) -> GreenNode {
    let mut children = Vec::new();
    let mut next = 0;
    for child in node.children_with_tokens() {
        let range = child.text_range();
        let upto = next + swaps[next..].partition_point(|(r, _)| r.start() < range.end());
        let within = &swaps[next..upto];
        next = upto;
        match child {
            NodeOrToken::Token(token) => {
                children.push(NodeOrToken::Token(token.green().to_owned()))
            }
            NodeOrToken::Node(child) if within.is_empty() => {
                children.push(NodeOrToken::Node(child.green().to_owned()))
            }
            NodeOrToken::Node(child)
                if within.len() == 1
                    && within[0].0 == range
                    && matches!(child.kind(), NODE_ATTR_SET | NODE_LIST) =>
            {
                *swapped += 1;
                children.push(NodeOrToken::Node(within[0].1.clone()));
            }
            NodeOrToken::Node(child) => {
                children.push(NodeOrToken::Node(rebuild(&child, within, swapped)))
            }
        }
    }
    GreenNode::new(
        <rnix::NixLanguage as rowan::Language>::kind_to_raw(node.kind()),
        children,
    )
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

#[cfg(test)]
mod tests;
