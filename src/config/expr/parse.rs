//! The parser of GitHub-style expressions: tokens in, syntax tree out. Knows the grammar,
//! the operator precedence and the built-in functions' names and arities; knows nothing of
//! contexts, values or how anything is evaluated.

use super::format::check_format;
use super::lex::{Token, TokenKind, lex};

/// A function the expression language provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Function {
    Contains,
    StartsWith,
    EndsWith,
    Format,
    Join,
    ToJson,
    FromJson,
    Success,
    Failure,
    Always,
    Cancelled,
}

impl Function {
    /// Names are matched case-insensitively, as on GitHub.
    fn from_name(name: &str) -> Option<Function> {
        FUNCTIONS
            .iter()
            .find(|(known, ..)| known.eq_ignore_ascii_case(name))
            .map(|(_, function, ..)| *function)
    }

    pub(super) fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, function, ..)| *function == self)
            .map(|(name, ..)| *name)
            .unwrap_or("?")
    }

    fn arity(self) -> (usize, usize) {
        FUNCTIONS
            .iter()
            .find(|(_, function, ..)| *function == self)
            .map(|(_, _, minimum, maximum)| (*minimum, *maximum))
            .unwrap_or((0, 0))
    }

    pub(super) fn is_status_function(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Always | Function::Cancelled
        )
    }
}

/// Name, function, fewest and most arguments.
const FUNCTIONS: &[(&str, Function, usize, usize)] = &[
    ("contains", Function::Contains, 2, 2),
    ("startsWith", Function::StartsWith, 2, 2),
    ("endsWith", Function::EndsWith, 2, 2),
    ("format", Function::Format, 1, usize::MAX),
    ("join", Function::Join, 1, 2),
    ("toJSON", Function::ToJson, 1, 1),
    ("fromJSON", Function::FromJson, 1, 1),
    ("success", Function::Success, 0, 0),
    ("failure", Function::Failure, 0, 0),
    ("always", Function::Always, 0, 0),
    ("cancelled", Function::Cancelled, 0, 0),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Literal {
    Null,
    Boolean(bool),
    Number(f64),
    String(String),
}

/// The syntax tree. Nodes that read the context keep the source text of the whole access chain
/// (`env.REGION`), so that errors can name what was read.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    Literal(Literal),
    Name(String),
    Property {
        target: Box<Node>,
        name: String,
        text: String,
    },
    /// `target.*`
    Filter {
        target: Box<Node>,
    },
    Index {
        target: Box<Node>,
        index: Box<Node>,
        text: String,
    },
    Not(Box<Node>),
    Compare(Comparison, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Call(Function, Vec<Node>),
}

impl Node {
    /// Whether any `success()`, `failure()`, `always()` or `cancelled()` appears in the tree.
    pub(super) fn uses_status_function(&self) -> bool {
        match self {
            Node::Literal(_) | Node::Name(_) => false,
            Node::Property { target, .. } | Node::Filter { target } | Node::Not(target) => {
                target.uses_status_function()
            }
            Node::Index { target, index, .. } => {
                target.uses_status_function() || index.uses_status_function()
            }
            Node::Compare(_, left, right) | Node::And(left, right) | Node::Or(left, right) => {
                left.uses_status_function() || right.uses_status_function()
            }
            Node::Call(function, arguments) => {
                function.is_status_function() || arguments.iter().any(Node::uses_status_function)
            }
        }
    }
}

/// Parses a whole expression (without any `${{ }}` around it).
pub(super) fn parse(expression: &str) -> Result<Node, String> {
    let tokens = lex(expression)?;
    if tokens.is_empty() {
        return Err(
            "empty expression; write a condition such as `github.ref == 'refs/heads/main'`".into(),
        );
    }
    let mut parser = Parser {
        source: expression.chars().collect(),
        expression,
        tokens,
        position: 0,
    };
    let node = parser.or()?;
    if let Some(token) = parser.tokens.get(parser.position) {
        return Err(parser.error_at(token, "expected an operator or the end of the expression"));
    }
    Ok(node)
}

struct Parser<'a> {
    source: Vec<char>,
    expression: &'a str,
    tokens: Vec<Token>,
    position: usize,
}

impl Parser<'_> {
    fn error_at(&self, token: &Token, expected: &str) -> String {
        let shown: String = self.source[token.start..token.end].iter().collect();
        format!(
            "unexpected `{shown}` at column {} in `{}`; {expected}",
            token.start + 1,
            self.expression
        )
    }

    fn error_at_end(&self, expected: &str) -> String {
        format!(
            "the expression `{}` ends too early; {expected}",
            self.expression
        )
    }

    fn peek_symbol(&self) -> Option<&'static str> {
        match self.tokens.get(self.position) {
            Some(Token {
                kind: TokenKind::Symbol(symbol),
                ..
            }) => Some(*symbol),
            _ => None,
        }
    }

    fn eat(&mut self, symbol: &str) -> bool {
        if self.peek_symbol() == Some(symbol) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: &str, expected: &str) -> Result<(), String> {
        if self.eat(symbol) {
            return Ok(());
        }
        Err(match self.tokens.get(self.position) {
            Some(token) => self.error_at(token, expected),
            None => self.error_at_end(expected),
        })
    }

    fn text_between(&self, start: usize, end: usize) -> String {
        self.source[start..end].iter().collect()
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.equality()?;
        while self.eat("&&") {
            let right = self.equality()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Node, String> {
        let mut left = self.relation()?;
        loop {
            let comparison = match self.peek_symbol() {
                Some("==") => Comparison::Equal,
                Some("!=") => Comparison::NotEqual,
                _ => return Ok(left),
            };
            self.position += 1;
            let right = self.relation()?;
            left = Node::Compare(comparison, Box::new(left), Box::new(right));
        }
    }

    fn relation(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        loop {
            let comparison = match self.peek_symbol() {
                Some("<") => Comparison::Less,
                Some("<=") => Comparison::LessOrEqual,
                Some(">") => Comparison::Greater,
                Some(">=") => Comparison::GreaterOrEqual,
                _ => return Ok(left),
            };
            self.position += 1;
            let right = self.unary()?;
            left = Node::Compare(comparison, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.eat("!") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Node, String> {
        let chain_start = self
            .tokens
            .get(self.position)
            .map(|token| token.start)
            .unwrap_or(0);
        let mut node = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(token) = self.tokens.get(self.position).cloned() else {
                    return Err(self.error_at_end("expected a property name or `*` after `.`"));
                };
                self.position += 1;
                node = match &token.kind {
                    TokenKind::Symbol("*") => Node::Filter {
                        target: Box::new(node),
                    },
                    TokenKind::Identifier(name) => Node::Property {
                        target: Box::new(node),
                        name: name.clone(),
                        text: self.text_between(chain_start, token.end),
                    },
                    _ => {
                        return Err(
                            self.error_at(&token, "expected a property name or `*` after `.`")
                        );
                    }
                };
            } else if self.eat("[") {
                let index = self.or()?;
                let closing_end = self.tokens.get(self.position).map(|token| token.end);
                self.expect("]", "expected `]` to close the index")?;
                node = Node::Index {
                    target: Box::new(node),
                    index: Box::new(index),
                    text: self.text_between(chain_start, closing_end.unwrap_or(chain_start)),
                };
            } else {
                return Ok(node);
            }
        }
    }

    fn primary(&mut self) -> Result<Node, String> {
        let Some(token) = self.tokens.get(self.position).cloned() else {
            return Err(self.error_at_end("expected a value"));
        };
        self.position += 1;
        match token.kind {
            TokenKind::Number(number) => Ok(Node::Literal(Literal::Number(number))),
            TokenKind::String(text) => Ok(Node::Literal(Literal::String(text))),
            TokenKind::Symbol("(") => {
                let inner = self.or()?;
                self.expect(")", "expected `)` to close the `(`")?;
                Ok(inner)
            }
            TokenKind::Identifier(ref name) if self.peek_symbol() == Some("(") => {
                self.call(&token, name)
            }
            TokenKind::Identifier(name) => Ok(match name.as_str() {
                "true" => Node::Literal(Literal::Boolean(true)),
                "false" => Node::Literal(Literal::Boolean(false)),
                "null" => Node::Literal(Literal::Null),
                _ => Node::Name(name),
            }),
            TokenKind::Symbol(_) => Err(self.error_at(&token, "expected a value")),
        }
    }

    fn call(&mut self, token: &Token, name: &str) -> Result<Node, String> {
        let Some(function) = Function::from_name(name) else {
            let known: Vec<&str> = FUNCTIONS.iter().map(|(known, ..)| *known).collect();
            return Err(format!(
                "unknown function `{name}` at column {} in `{}`; known functions: {}",
                token.start + 1,
                self.expression,
                known.join(", ")
            ));
        };
        self.expect("(", "expected `(`")?;
        let mut arguments = Vec::new();
        if !self.eat(")") {
            loop {
                arguments.push(self.or()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",", "expected `,` or `)` in the argument list")?;
            }
        }
        let (minimum, maximum) = function.arity();
        if arguments.len() < minimum || arguments.len() > maximum {
            let wanted = match (minimum, maximum) {
                (low, high) if low == high => format!("{low}"),
                (low, usize::MAX) => format!("at least {low}"),
                (low, high) => format!("{low} to {high}"),
            };
            return Err(format!(
                "function `{}` at column {} in `{}` takes {wanted} argument(s), not {}",
                function.name(),
                token.start + 1,
                self.expression,
                arguments.len()
            ));
        }
        if function == Function::Format
            && let Some(Node::Literal(Literal::String(template))) = arguments.first()
        {
            check_format(template, arguments.len() - 1).map_err(|problem| {
                format!(
                    "{problem} in `format` at column {} in `{}`",
                    token.start + 1,
                    self.expression
                )
            })?;
        }
        Ok(Node::Call(function, arguments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_binds_comparison_tighter_than_and_tighter_than_or() {
        let node = parse("a || b && c == d").unwrap();
        let Node::Or(_, right) = node else {
            panic!("`||` must be the root")
        };
        let Node::And(_, comparison) = *right else {
            panic!("`&&` must bind tighter than `||`")
        };
        assert!(matches!(*comparison, Node::Compare(Comparison::Equal, ..)));
    }

    #[test]
    fn property_chains_keep_their_source_text() {
        let node = parse("github.event['head_commit'].id").unwrap();
        let Node::Property { text, .. } = node else {
            panic!("expected a property")
        };
        assert_eq!(text, "github.event['head_commit'].id");
    }

    #[test]
    fn numbers_parse_in_every_documented_form() {
        for (text, expect) in [
            ("42", 42.0),
            ("-9.2", -9.2),
            ("0xff", 255.0),
            ("-2.99e-2", -0.0299),
            ("1e3", 1000.0),
        ] {
            assert_eq!(
                parse(text).unwrap(),
                Node::Literal(Literal::Number(expect)),
                "{text}"
            );
        }
    }

    #[test]
    fn hyphenated_names_are_one_identifier() {
        assert!(matches!(
            parse("needs.build-image.result").unwrap(),
            Node::Property { .. }
        ));
    }
}
