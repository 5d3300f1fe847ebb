//! The lexer of the expression language: strings (`'...'` with `''` for a quote), numbers
//! (decimal, exponent, `0x` hex, `0o` octal), identifiers (which may contain `-`) and operators.
//! Knows nothing of grammar or evaluation.

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenKind {
    Number(f64),
    String(String),
    Identifier(String),
    /// Operators and punctuation, as written.
    Symbol(&'static str),
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub kind: TokenKind,
    /// Character offsets into the expression.
    pub start: usize,
    pub end: usize,
}

const SYMBOLS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", ",", "*",
];

/// Splits an expression into tokens; the error names the column and what is wrong.
pub(super) fn lex(expression: &str) -> Result<Vec<Token>, String> {
    let characters: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        let start = index;
        if character.is_whitespace() {
            index += 1;
            continue;
        }
        let starts_number = character.is_ascii_digit()
            || (matches!(character, '-' | '+')
                && characters.get(index + 1).is_some_and(char::is_ascii_digit));
        let kind = if character == '\'' {
            let mut text = String::new();
            index += 1;
            loop {
                match characters.get(index) {
                    None => {
                        return Err(format!(
                            "unterminated string starting at column {} in `{expression}`; close it with `'` (write `''` for a quote inside)",
                            start + 1
                        ));
                    }
                    Some('\'') if characters.get(index + 1) == Some(&'\'') => {
                        text.push('\'');
                        index += 2;
                    }
                    Some('\'') => {
                        index += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        index += 1;
                    }
                }
            }
            TokenKind::String(text)
        } else if character == '"' {
            return Err(format!(
                "double quote at column {} in `{expression}`; strings use single quotes: write 'text'",
                start + 1
            ));
        } else if starts_number {
            index += 1;
            while characters
                .get(index)
                .is_some_and(|next| next.is_ascii_alphanumeric() || *next == '.' || *next == '_')
                || (matches!(characters.get(index), Some('-' | '+'))
                    && matches!(characters.get(index - 1), Some('e' | 'E'))
                    && !characters[start..index]
                        .iter()
                        .any(|c| matches!(c, 'x' | 'X')))
            {
                index += 1;
            }
            let text: String = characters[start..index].iter().collect();
            let number = parse_number_literal(&text).ok_or_else(|| {
                format!(
                    "invalid number `{text}` at column {} in `{expression}`; write e.g. `42`, `-1.5`, `1e3` or `0xff`",
                    start + 1
                )
            })?;
            TokenKind::Number(number)
        } else if character.is_alphabetic() || character == '_' {
            while characters
                .get(index)
                .is_some_and(|next| next.is_alphanumeric() || *next == '_' || *next == '-')
            {
                index += 1;
            }
            TokenKind::Identifier(characters[start..index].iter().collect())
        } else if let Some(symbol) = SYMBOLS.iter().find(|symbol| {
            symbol
                .chars()
                .enumerate()
                .all(|(offset, expected)| characters.get(index + offset) == Some(&expected))
        }) {
            index += symbol.chars().count();
            TokenKind::Symbol(symbol)
        } else {
            let hint = match character {
                '=' => "; compare with `==`",
                '&' => "; write `&&` for \"and\"",
                '|' => "; write `||` for \"or\"",
                '$' | '{' | '}' => "; `${{ }}` may only wrap the whole expression",
                _ => "",
            };
            return Err(format!(
                "unexpected character `{character}` at column {} in `{expression}`{hint}",
                start + 1
            ));
        };
        tokens.push(Token {
            kind,
            start,
            end: index,
        });
    }
    Ok(tokens)
}

/// A number as GitHub writes them: decimal with optional fraction and exponent, or `0x` hex,
/// `0o` octal, with an optional sign.
pub(super) fn parse_number_literal(text: &str) -> Option<f64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()? as f64
    } else if let Some(octal) = unsigned.strip_prefix("0o") {
        i64::from_str_radix(octal, 8).ok()? as f64
    } else {
        let valid = !unsigned.is_empty()
            && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && unsigned
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
        if !valid {
            return None;
        }
        unsigned.parse::<f64>().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}
