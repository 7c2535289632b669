//! The contained parse of a text whose brackets nest: its tokens and their brackets, and
//! each region (the whole text or a block) parsed with its separable blocks parsed alone
//! and left empty in it, then put back (`super` says why this is the parse).

use rnix::SyntaxKind::{self, *};
use rnix::{ParseError, SyntaxNode, TextRange, TextSize};
use rowan::{GreenNode, NodeOrToken};

use super::{Shape, error_range, moved, separable_between, single_node, with_range};

/// Whether a text's brackets nest (what [`Tokens::of`] tells, without keeping the tokens).
pub(super) fn nests(text: &str) -> bool {
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
pub(super) struct Tokens<'t> {
    text: &'t str,
    pub(super) kinds: Vec<SyntaxKind>,
    ranges: Vec<TextRange>,
    /// For each token, the index of its closing bracket when it opens one.
    pub(super) pairs: Vec<Option<usize>>,
    /// How deep brackets nest at the most.
    pub(super) depth: usize,
}

/// How deep inside blocks parsed alone a block may still be parsed alone: deeper ones are
/// parsed in place, so that the parse's own depth stays bounded whatever the text.
pub(super) const MAX_DEPTH_ALONE: usize = 32;

/// A text parsed as one: the whole text or a block, and the blocks inside it to parse alone.
pub(super) struct Region {
    pub(super) range: TextRange,
    /// Indices of the opening tokens of the candidate blocks directly inside.
    pub(super) children: Vec<usize>,
}

impl<'t> Tokens<'t> {
    /// `None` when the brackets do not nest.
    pub(super) fn of(text: &'t str) -> Option<Tokens<'t>> {
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
        let mut depth = 0;
        for (i, kind) in kinds.iter().enumerate() {
            let opener = match kind {
                TOKEN_L_BRACE | TOKEN_L_BRACK | TOKEN_L_PAREN | TOKEN_INTERPOL_START => {
                    open.push(i);
                    depth = depth.max(open.len());
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
            depth,
        })
    }

    fn is_block(&self, i: usize) -> bool {
        matches!(self.kinds[i], TOKEN_L_BRACE | TOKEN_L_BRACK)
    }

    /// The blocks not inside another block, in order.
    pub(super) fn top_blocks(&self) -> Vec<usize> {
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

    /// The contained parse of the block opened by token `open`, `depth` blocks parsed
    /// alone deep, when it is separable (its neighbours are the caller's to check).
    pub(super) fn parse_block(
        &self,
        open: usize,
        depth: usize,
        shape: &mut Shape,
    ) -> Option<(SyntaxNode, Vec<ParseError>)> {
        if depth > MAX_DEPTH_ALONE {
            return None;
        }
        let close = self.pairs[open]?;
        let range = TextRange::new(self.ranges[open].start(), self.ranges[close].end());
        let kind = if self.kinds[open] == TOKEN_L_BRACK {
            NODE_LIST
        } else {
            NODE_ATTR_SET
        };
        // Without error, the contained parse is rnix's: no need to take the block apart.
        let whole = rnix::Root::parse(&self.text[range]);
        if whole.errors().is_empty() {
            return single_node(&whole.syntax(), kind, usize::from(range.len()))
                .map(|node| (node, Vec::new()));
        }
        let region = Region {
            range,
            children: self.blocks_within(open + 1, close),
        };
        let mut inner = Shape::default();
        let (root, errors) = self.parse_region(&region, depth, &mut inner);
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
    pub(super) fn parse_region(
        &self,
        region: &Region,
        depth: usize,
        shape: &mut Shape,
    ) -> (SyntaxNode, Vec<ParseError>) {
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
                .then(|| self.parse_block(open, depth + 1, &mut inner))
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
