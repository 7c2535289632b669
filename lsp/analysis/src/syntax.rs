//! Reading Nix syntax the way the analysis needs it: the static names of an attribute
//! path, plain strings, literal types, function parameters, and how a name is written
//! back (bare or quoted).
//!
//! Pure helpers over rnix's tree; they never panic on broken syntax and know nothing of
//! deployments.

use rnix::ast;
use rnix::{SyntaxKind, TextRange};
use rowan::ast::AstNode;

/// Whether `name` can be written bare in an attribute path (else it needs quotes).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
        && !matches!(
            name,
            "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit" | "or"
        )
}

/// A resource name as written in an attribute path: bare, or quoted.
pub fn attribute_name(name: &str) -> String {
    if is_identifier(name) {
        return name.to_owned();
    }
    let mut quoted = String::from("\"");
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => quoted.push_str("\\$"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Whether a function's parameter binds `name`.
pub(crate) fn binds(lambda: &ast::Lambda, name: &str) -> bool {
    match lambda.param() {
        Some(ast::Param::IdentParam(param)) => param.ident().is_some_and(|i| ident_is(&i, name)),
        Some(ast::Param::Pattern(pattern)) => {
            pattern
                .pat_bind()
                .and_then(|b| b.ident())
                .is_some_and(|i| ident_is(&i, name))
                || pattern
                    .pat_entries()
                    .any(|e| e.ident().is_some_and(|i| ident_is(&i, name)))
        }
        None => false,
    }
}

/// Whether a function's parameter is `name` or its pattern has an entry `name` (an `@`
/// binding does not count).
pub(crate) fn takes_argument(lambda: &ast::Lambda, name: &str) -> bool {
    match lambda.param() {
        Some(ast::Param::Pattern(pattern)) => pattern
            .pat_entries()
            .any(|e| e.ident().is_some_and(|i| ident_is(&i, name))),
        Some(ast::Param::IdentParam(param)) => param.ident().is_some_and(|i| ident_is(&i, name)),
        None => false,
    }
}

/// Whether an attribute path names one of `names` (bare or quoted).
pub(crate) fn mentions(path: &ast::Attrpath, names: &[&str]) -> bool {
    path.attrs().any(|attr| match attr {
        ast::Attr::Ident(ident) => ident
            .ident_token()
            .is_some_and(|t| names.contains(&t.text())),
        ast::Attr::Str(string) => {
            plain_string(&string).is_some_and(|s| names.contains(&s.as_str()))
        }
        ast::Attr::Dynamic(_) => false,
    })
}

fn ident_is(ident: &ast::Ident, name: &str) -> bool {
    ident.ident_token().is_some_and(|t| t.text() == name)
}

pub(crate) fn strip_parens(expr: ast::Expr) -> ast::Expr {
    match expr {
        ast::Expr::Paren(paren) => paren.expr().map_or(ast::Expr::Paren(paren), strip_parens),
        other => other,
    }
}

/// A name in an attribute path, `None` for a dynamic part (`${x}`), with its range.
pub(crate) type StaticName = (Option<String>, TextRange);

/// The names of an attribute path, `None` for a dynamic part (`${x}`).
pub(crate) fn static_names(path: &ast::Attrpath) -> Vec<StaticName> {
    path.attrs()
        .map(|attr| {
            let range = attr.syntax().text_range();
            let name = match attr {
                ast::Attr::Ident(ident) => ident.ident_token().map(|t| t.text().to_owned()),
                ast::Attr::Str(string) => plain_string(&string),
                ast::Attr::Dynamic(_) => None,
            };
            (name, range)
        })
        .collect()
}

/// The text of a string without interpolations. Read from its tokens: rnix's own
/// `normalized_parts` panics on some broken strings.
pub(crate) fn plain_string(string: &ast::Str) -> Option<String> {
    let node = string.syntax();
    let indented = node.first_token().is_some_and(|t| t.text() == "''");
    let mut raw = String::new();
    for element in node.children_with_tokens() {
        match element {
            rowan::NodeOrToken::Token(token) => match token.kind() {
                SyntaxKind::TOKEN_STRING_CONTENT => raw.push_str(token.text()),
                SyntaxKind::TOKEN_STRING_START | SyntaxKind::TOKEN_STRING_END => {}
                _ => return None,
            },
            // An interpolation, or a part that did not parse.
            rowan::NodeOrToken::Node(_) => return None,
        }
    }
    if indented {
        // Indentation stripping and `''` escapes: not worth it for names; one plain line is.
        return (!raw.contains(['\n', '$']) && !raw.contains("''")).then_some(raw);
    }
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some(other) => text.push(other),
            None => return None,
        }
    }
    Some(text)
}

/// The JSON type of a literal value (`string`, `integer`, `boolean`, ...).
pub(crate) fn literal_type(value: &ast::Expr) -> Option<&'static str> {
    match value {
        ast::Expr::Str(_) => Some("string"),
        ast::Expr::List(_) => Some("array"),
        ast::Expr::AttrSet(_) => Some("object"),
        ast::Expr::Literal(literal) => match literal.syntax().first_token().map(|t| t.kind()) {
            Some(SyntaxKind::TOKEN_INTEGER) => Some("integer"),
            Some(SyntaxKind::TOKEN_FLOAT) => Some("number"),
            _ => None,
        },
        ast::Expr::Ident(ident) => match ident.ident_token().as_ref().map(|t| t.text()) {
            Some("true" | "false") => Some("boolean"),
            Some("null") => Some("null"),
            _ => None,
        },
        _ => None,
    }
}

/// The innermost set around `range` whose `{` ends before it and whose own `}` starts after
/// it (a set being typed, without its `}` yet, is not one).
pub(crate) fn set_around(
    root: &rnix::SyntaxNode,
    range: rnix::TextRange,
) -> Option<rnix::SyntaxNode> {
    use rnix::SyntaxKind::{NODE_ATTR_SET, TOKEN_L_BRACE, TOKEN_R_BRACE};
    let covering = match root.covering_element(range) {
        rowan::NodeOrToken::Node(node) => node,
        rowan::NodeOrToken::Token(token) => token.parent()?,
    };
    covering.ancestors().find(|node| {
        if node.kind() != NODE_ATTR_SET {
            return false;
        }
        let open = node
            .children_with_tokens()
            .find(|c| c.kind() == TOKEN_L_BRACE);
        let close = node.last_child_or_token();
        matches!((open, close), (Some(open), Some(close))
            if close.kind() == TOKEN_R_BRACE
                && open.text_range().end() <= range.start()
                && range.end() <= close.text_range().start())
    })
}

/// The children of `node` (nodes and tokens) from the first that ends at or after `from`,
/// found by rowan's search among the children's offsets: a set of ten thousand resources is
/// edited at every keystroke, and walking its children to the edit costs a cache miss each.
pub(crate) fn children_from(
    node: &rnix::SyntaxNode,
    from: rnix::TextSize,
) -> impl Iterator<Item = rnix::SyntaxElement> {
    let range = node.text_range();
    let near = from.clamp(range.start(), range.end());
    let mut first = node.child_or_token_at_range(TextRange::empty(near));
    while let Some(before) = first.as_ref().and_then(|at| at.prev_sibling_or_token()) {
        if before.text_range().end() < from {
            break;
        }
        first = Some(before);
    }
    std::iter::successors(first, |at| at.next_sibling_or_token())
}

/// The child of `node` at position `index` among its children, reached from `near`, one
/// of its children, a sibling at a time.
pub(crate) fn sibling_at(near: rnix::SyntaxElement, index: usize) -> Option<rnix::SyntaxElement> {
    let mut at = near;
    while at.index() > index {
        at = at.prev_sibling_or_token()?;
    }
    while at.index() < index {
        at = at.next_sibling_or_token()?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use rnix::ast;
    use rowan::ast::AstNode;

    use super::*;

    /// Each string literal of `text`, as `plain_string` reads it.
    fn strings(text: &str) -> Vec<Option<String>> {
        rnix::Root::parse(text)
            .syntax()
            .descendants()
            .filter_map(ast::Str::cast)
            .map(|string| plain_string(&string))
            .collect()
    }

    /// From an offset between two entries, the one that ends there comes first; from inside
    /// one, that one; at the end of the set, its closing brace alone.
    #[test]
    fn children_from_an_offset_start_with_the_one_that_ends_there() {
        let root = rnix::Root::parse("{ a = 1; b = 2; }").syntax();
        let set = root.first_child().unwrap();
        let texts = |from: u32| -> Vec<String> {
            children_from(&set, from.into())
                .map(|child| child.to_string())
                .collect()
        };
        assert_eq!(texts(8), ["a = 1;", " ", "b = 2;", " ", "}"]);
        assert_eq!(texts(11), ["b = 2;", " ", "}"]);
        assert_eq!(texts(0), ["{", " ", "a = 1;", " ", "b = 2;", " ", "}"]);
        assert_eq!(texts(17).len(), 1);
        let last = children_from(&set, 11.into()).last().unwrap();
        let first = sibling_at(last, 0).unwrap();
        assert_eq!(first.to_string(), "{");
    }

    #[test]
    fn names_written_bare_or_quoted() {
        let written: Vec<String> = [
            "a", "a-b'_1", "1a", "in", "a b", "\"q\"\\", "${x}", "$x", "",
        ]
        .iter()
        .map(|name| attribute_name(name))
        .collect();
        insta::assert_snapshot!(written.join("  "), @r#"a  a-b'_1  "1a"  "in"  "a b"  "\"q\"\\"  "\${x}"  "$x"  """#);
    }

    #[test]
    fn plain_strings_without_interpolation() {
        let read = strings(
            r#"[ "a\"b\n" ''one line'' ''two
        lines'' "x${y}" ''a''${b}'' "" ]"#,
        );
        insta::assert_snapshot!(format!("{read:?}"), @r#"[Some("a\"b\n"), Some("one line"), None, None, None, Some("")]"#);
    }

    #[test]
    fn literal_types() {
        let root = rnix::Root::parse(r#"[ "s" 1 1.5 true null [ ] { } x (1) ]"#);
        let list = root
            .syntax()
            .descendants()
            .find_map(ast::List::cast)
            .expect("a list");
        let types: Vec<Option<&str>> = list.items().map(|item| literal_type(&item)).collect();
        insta::assert_snapshot!(format!("{types:?}"), @r#"[Some("string"), Some("integer"), Some("number"), Some("boolean"), Some("null"), Some("array"), Some("object"), None, None]"#);
    }
}
