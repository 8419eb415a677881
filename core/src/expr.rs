//! Thread distribution expressions: `@alice`, `@alice + @bob`, `@support - @gary`,
//! `(@a + @b) - @c`. The server resolves them to users; parsing lives here so that the
//! client can check an expression before it goes anywhere and both sides agree on the syntax.
//!
//! Grammar (whitespace is free between tokens; `+` and `-` bind equally, left to right):
//! ```text
//! expr := term (('+' | '-') term)*
//! term := '@' tag | '(' expr ')'
//! tag  := [A-Za-z0-9_.]+        (compared in lower case)
//! ```

use std::collections::BTreeSet;
use std::fmt;

/// The longest expression accepted, in characters.
pub const MAX_LEN: usize = 1024;
/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `@name`, with the character position of its `@`.
    Tag {
        name: String,
        position: usize,
    },
    Union(Box<Expr>, Box<Expr>),
    Difference(Box<Expr>, Box<Expr>),
}

/// Why an expression was refused, and where: `position` counts characters from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ExprError {}

/// Parses `input` into an [`Expr`].
pub fn parse(input: &str) -> Result<Expr, ExprError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_LEN {
        return Err(err(
            MAX_LEN,
            format!("expression longer than {MAX_LEN} characters"),
        ));
    }
    let mut p = Parser { chars, pos: 0 };
    p.skip_ws();
    if p.peek().is_none() {
        return Err(err(
            p.pos,
            "empty expression: expected a tag such as @alice",
        ));
    }
    let expr = p.expr(0)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(expr),
        Some(')') => Err(err(p.pos, "unmatched ')'")),
        Some(c) => Err(err(p.pos, format!("expected '+' or '-' but found '{c}'"))),
    }
}

fn err(position: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        position,
        message: message.into(),
    }
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let mut left = self.term(depth)?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('+') => Expr::Union as fn(_, _) -> _,
                Some('-') => Expr::Difference as fn(_, _) -> _,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.term(depth)?;
            left = op(Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self, depth: usize) -> Result<Expr, ExprError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                while self.peek().is_some_and(is_tag_char) {
                    self.pos += 1;
                }
                if self.pos == start + 1 {
                    return Err(err(self.pos, "expected a tag name after '@'"));
                }
                let name: String = self.chars[start + 1..self.pos].iter().collect();
                Ok(Expr::Tag {
                    name: name.to_ascii_lowercase(),
                    position: start,
                })
            }
            Some('(') => {
                if depth >= MAX_DEPTH {
                    return Err(err(start, "parentheses nested too deeply"));
                }
                self.pos += 1;
                let inner = self.expr(depth + 1)?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(err(
                        self.pos,
                        format!("expected ')' to close the '(' at position {start}"),
                    ));
                }
                self.pos += 1;
                Ok(inner)
            }
            None => Err(err(
                start,
                "unexpected end: expected a tag such as @alice or '('",
            )),
            Some(c) => Err(err(
                start,
                format!("expected a tag such as @alice or '(' but found '{c}'"),
            )),
        }
    }
}

impl Expr {
    /// Every tag the expression names, in order of appearance.
    pub fn tags(&self) -> Vec<&str> {
        match self {
            Expr::Tag { name, .. } => vec![name.as_str()],
            Expr::Union(a, b) | Expr::Difference(a, b) => {
                let mut tags = a.tags();
                tags.extend(b.tags());
                tags
            }
        }
    }

    /// The tags that add people: every tag except those only ever taken away (`@b` in
    /// `@a - @b`). A tag only taken away may name no one any more (a user deleted since).
    pub fn added_tags(&self) -> Vec<&str> {
        match self {
            Expr::Tag { name, .. } => vec![name.as_str()],
            Expr::Union(a, b) => {
                let mut tags = a.added_tags();
                tags.extend(b.added_tags());
                tags
            }
            Expr::Difference(a, _) => a.added_tags(),
        }
    }

    /// Evaluates the expression to a set, asking `lookup` for each tag's members (it may
    /// refuse a tag, e.g. an unknown one, and gets the tag's position to report).
    pub fn evaluate<T: Ord + Clone, E>(
        &self,
        lookup: &mut impl FnMut(&str, usize) -> Result<BTreeSet<T>, E>,
    ) -> Result<BTreeSet<T>, E> {
        Ok(match self {
            Expr::Tag { name, position } => lookup(name, *position)?,
            Expr::Union(a, b) => {
                let mut set = a.evaluate(lookup)?;
                set.extend(b.evaluate(lookup)?);
                set
            }
            Expr::Difference(a, b) => {
                let mut set = a.evaluate(lookup)?;
                for x in b.evaluate(lookup)? {
                    set.remove(&x);
                }
                set
            }
        })
    }
}

/// Prints the expression in its normal form: lower-case tags, single spaces around
/// operators, parentheses only where a compound term stands on the right. `parse` of the
/// printed form gives back the same expression, so two devices that print the same thread
/// expression agree on it byte for byte.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Tag { name, .. } => write!(f, "@{name}"),
            Expr::Union(a, b) | Expr::Difference(a, b) => {
                let op = if matches!(self, Expr::Union(..)) {
                    '+'
                } else {
                    '-'
                };
                match **b {
                    Expr::Tag { .. } => write!(f, "{a} {op} {b}"),
                    _ => write!(f, "{a} {op} ({b})"),
                }
            }
        }
    }
}

/// The canonical expression for a set of user tags: `@a + @b`, sorted, each once.
pub fn canonical<'a>(tags: impl IntoIterator<Item = &'a str>) -> String {
    canonical_of(tags.into_iter().map(|t| format!("@{t}")).collect())
}

/// The sorted, deduplicated join; one copy for every caller of [`canonical`] (and a sort of
/// strings the wasm has anyway, where a `BTreeSet` compiled a tree and a stable sort).
fn canonical_of(mut tags: Vec<String>) -> String {
    tags.sort_unstable();
    tags.dedup();
    tags.join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn tags_lists_every_tag_named() {
        let e = parse("(@support + @bob) - @gary").unwrap();
        assert_eq!(e.tags(), ["support", "bob", "gary"]);
        assert_eq!(e.added_tags(), ["support", "bob"]);
        let e = parse("@a - (@b - @c) + @d").unwrap();
        assert_eq!(e.added_tags(), ["a", "d"]);
    }

    fn resolve(input: &str) -> Result<Vec<&'static str>, ExprError> {
        let dir: BTreeMap<&str, Vec<&str>> = [
            ("alice", vec!["alice"]),
            ("bob", vec!["bob"]),
            ("gary", vec!["gary"]),
            ("support", vec!["bob", "gary", "sue"]),
        ]
        .into_iter()
        .collect();
        let expr = parse(input)?;
        let set = expr.evaluate(&mut |name, position| {
            dir.get(name)
                .map(|m| m.iter().copied().collect())
                .ok_or_else(|| err(position, format!("unknown tag @{name}")))
        })?;
        Ok(set.into_iter().collect())
    }

    #[test]
    fn unions_differences_and_parentheses() {
        assert_eq!(resolve("@alice").unwrap(), ["alice"]);
        assert_eq!(resolve(" @Alice+@bob ").unwrap(), ["alice", "bob"]);
        assert_eq!(resolve("@support - @gary").unwrap(), ["bob", "sue"]);
        assert_eq!(resolve("@support - (@gary + @bob)").unwrap(), ["sue"]);
        assert_eq!(
            resolve("(@support - @gary) - @bob + @alice").unwrap(),
            ["alice", "sue"]
        );
        assert_eq!(resolve("@support - @gary - @bob").unwrap(), ["sue"]);
    }

    #[test]
    fn errors_point_at_the_fault() {
        let e = |s: &str| resolve(s).unwrap_err();
        assert_eq!(e("").position, 0);
        assert_eq!(e("alice").position, 0);
        assert_eq!(e("@alice +").position, 8);
        assert_eq!(e("@alice @bob").position, 7);
        assert_eq!(e("@").position, 1);
        assert_eq!(e("(@alice").position, 7);
        assert!(e("(@alice").message.contains("position 0"));
        assert_eq!(e("@alice)").position, 6);
        let unknown = e("@alice + @nobody");
        assert_eq!(
            (unknown.position, unknown.message.as_str()),
            (9, "unknown tag @nobody")
        );
        assert_eq!(e("é@alice").position, 0);
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}@alice{}", "(".repeat(40), ")".repeat(40));
        assert!(e_msg(&deep).contains("nested too deeply"));
        let long = "@a + ".repeat(300);
        assert!(e_msg(&long).contains("longer than"));
    }

    fn e_msg(s: &str) -> String {
        parse(s).unwrap_err().message
    }

    #[test]
    fn printing_gives_a_normal_form_that_parses_back_to_the_same_sets() {
        for (input, printed) in [
            ("@Support", "@support"),
            ("( @support+@Bob )-@gary", "@support + @bob - @gary"),
            ("@support - (@gary + @bob)", "@support - (@gary + @bob)"),
            ("((@a))", "@a"),
            ("@a - (@b - (@c + @d))", "@a - (@b - (@c + @d))"),
        ] {
            let expr = parse(input).unwrap();
            assert_eq!(expr.to_string(), printed, "{input}");
            let again = parse(printed).unwrap();
            assert_eq!(again.to_string(), printed);
        }
        for input in [
            "@support - (@gary + @bob)",
            "(@support - @gary) - @bob + @alice",
        ] {
            let printed = parse(input).unwrap().to_string();
            assert_eq!(resolve(&printed).unwrap(), resolve(input).unwrap());
        }
    }

    #[test]
    fn canonical_form_is_sorted_and_unique() {
        assert_eq!(canonical(["bob", "alice", "bob"]), "@alice + @bob");
    }
}
