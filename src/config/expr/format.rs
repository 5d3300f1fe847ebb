//! `format()` templates: `{0}`, `{1}`, ... placeholders and `{{`/`}}` for literal braces.
//! Shared by the parser (which checks literal templates early) and the evaluator.

/// One piece of a `format` template.
pub(super) enum FormatPiece<'a> {
    Text(std::borrow::Cow<'a, str>),
    Argument(usize),
}

/// Splits a `format` template into text and `{N}` placeholders; `{{` and `}}` are literal braces.
pub(super) fn split_format(template: &str) -> Result<Vec<FormatPiece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut characters = template.char_indices().peekable();
    while let Some((_, character)) = characters.next() {
        match character {
            '{' if characters.peek().map(|(_, next)| *next) == Some('{') => {
                characters.next();
                text.push('{');
            }
            '}' if characters.peek().map(|(_, next)| *next) == Some('}') => {
                characters.next();
                text.push('}');
            }
            '{' => {
                let mut digits = String::new();
                loop {
                    match characters.next() {
                        Some((_, '}')) => break,
                        Some((_, digit)) if digit.is_ascii_digit() => digits.push(digit),
                        _ => {
                            return Err(format!(
                                "invalid placeholder in format string '{template}'; write `{{0}}`, `{{1}}`, ... or `{{{{` for a brace"
                            ));
                        }
                    }
                }
                let number: usize = digits.parse().map_err(|_| {
                    format!("empty placeholder `{{}}` in format string '{template}'; write `{{0}}`")
                })?;
                if !text.is_empty() {
                    pieces.push(FormatPiece::Text(std::mem::take(&mut text).into()));
                }
                pieces.push(FormatPiece::Argument(number));
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` in format string '{template}'; write `}}}}` for a brace"
                ));
            }
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(FormatPiece::Text(text.into()));
    }
    Ok(pieces)
}

/// Checks a `format` template against the number of arguments given after it.
pub(super) fn check_format(template: &str, argument_count: usize) -> Result<(), String> {
    for piece in split_format(template)? {
        if let FormatPiece::Argument(number) = piece
            && number >= argument_count
        {
            return Err(format!(
                "placeholder `{{{number}}}` in format string '{template}' has no argument ({argument_count} given)"
            ));
        }
    }
    Ok(())
}
