//! Glob patterns as GitHub Actions documents them for branch, tag and path filters ("filter
//! pattern cheat sheet"): `*` (anything but `/`), `**` (anything), `?` and `+` (zero-or-one and
//! one-or-more of the preceding character), `[...]` (one listed character or range), `!` (negation,
//! first character only) and `\` (escape). A list of patterns is evaluated in order and the last
//! pattern that matches decides. This module knows nothing of events, refs or pipelines.
//!
//! A pattern's literal prefix and suffix are compared directly; what lies between is matched by
//! a small automaton (see `automaton`) that never backtracks.

mod automaton;

use automaton::{Automaton, CharMatcher, Repeat, Token};

/// Checks one pattern; the error says what is wrong with it.
pub fn check(pattern: &str) -> Result<(), String> {
    Pattern::compile(pattern).map(|_| ())
}

/// Checks a list of patterns as a positive filter (`branches`, `tags`, `paths`): every pattern's
/// syntax, and that a list using `!` also has a pattern without it, as GitHub requires.
/// Returns every problem found.
pub fn check_list(patterns: &[String]) -> Result<(), Vec<String>> {
    let mut problems: Vec<String> = patterns
        .iter()
        .filter_map(|pattern| check(pattern).err())
        .collect();
    let all_negative = !patterns.is_empty()
        && patterns
            .iter()
            .all(|pattern| pattern.starts_with('!') && pattern.len() > 1);
    if all_negative {
        problems.push(format!(
            "patterns {} are all negative (`!`), so nothing can match; add at least one positive pattern such as `**`, or use the `-ignore` form of the filter",
            patterns
                .iter()
                .map(|pattern| format!("`{pattern}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// An ordered list of compiled patterns; the last one that matches a value decides.
#[derive(Clone, Debug)]
pub struct Filter {
    patterns: Vec<Pattern>,
}

impl Filter {
    /// Compiles every pattern; the error names each invalid pattern and what is wrong with it.
    pub fn new(patterns: &[String]) -> Result<Filter, String> {
        let mut compiled = Vec::with_capacity(patterns.len());
        let mut problems = Vec::new();
        for pattern in patterns {
            match Pattern::compile(pattern) {
                Ok(one) => compiled.push(one),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(Filter { patterns: compiled })
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether the value is included: the last pattern that matches it decides (a `!` pattern
    /// excludes); a value no pattern matches is excluded.
    pub fn matches(&self, value: &str) -> bool {
        self.patterns
            .iter()
            .rev()
            .find(|pattern| pattern.matches(value))
            .is_some_and(|pattern| !pattern.negated)
    }
}

/// The common shapes of the part between the literal prefix and suffix (`docs/**`, `**.js`,
/// `*.md`), answered without running the automaton.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Middle {
    /// `**`
    Anything,
    /// `*`
    NoSlash,
    /// Anything else.
    Automaton,
}

/// One compiled pattern.
#[derive(Clone, Debug)]
struct Pattern {
    negated: bool,
    /// Leading characters that must appear literally, checked before the automaton runs.
    literal_prefix: String,
    /// Trailing characters that must appear literally, checked before the automaton runs.
    literal_suffix: String,
    /// The whole pattern is literal text: compare instead of simulating.
    fully_literal: bool,
    /// What lies between the prefix and the suffix, when it is simple enough to skip the automaton.
    middle: Middle,
    automaton: Automaton,
}

impl Pattern {
    fn compile(pattern: &str) -> Result<Pattern, String> {
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if pattern.is_empty() {
            return Err("empty pattern; write a pattern such as `main` or `docs/**`".into());
        }
        if body.is_empty() {
            return Err("pattern `!` negates nothing; write e.g. `!docs/**`".into());
        }
        let tokens = parse(pattern, body, usize::from(negated))?;
        let prefix_length = tokens
            .iter()
            .take_while(|token| matches!(token, Token::Atom(CharMatcher::Literal(_), Repeat::One)))
            .count();
        let literal_prefix = literal_text(&tokens[..prefix_length]);
        // The suffix stops at the tokens of a `**/` group: those may match nothing at all.
        let mut inside_group = vec![false; tokens.len()];
        for (index, token) in tokens.iter().enumerate() {
            if let Token::SkipTo(end) = token {
                inside_group[index..*end]
                    .iter_mut()
                    .for_each(|inside| *inside = true);
            }
        }
        let suffix_length = if prefix_length == tokens.len() {
            0
        } else {
            (prefix_length..tokens.len())
                .rev()
                .take_while(|&index| {
                    !inside_group[index]
                        && matches!(
                            tokens[index],
                            Token::Atom(CharMatcher::Literal(_), Repeat::One)
                        )
                })
                .count()
        };
        let accept_state = tokens.len() - suffix_length;
        let literal_suffix = literal_text(&tokens[accept_state..]);
        let middle = match &tokens[prefix_length..accept_state] {
            [Token::Atom(CharMatcher::Any, Repeat::ZeroOrMore)] => Middle::Anything,
            [Token::Atom(CharMatcher::AnyButSlash, Repeat::ZeroOrMore)] => Middle::NoSlash,
            _ => Middle::Automaton,
        };
        Ok(Pattern {
            negated,
            literal_prefix,
            literal_suffix,
            fully_literal: prefix_length == tokens.len(),
            middle,
            automaton: Automaton::new(&tokens, prefix_length, accept_state),
        })
    }

    fn matches(&self, value: &str) -> bool {
        if self.fully_literal {
            return value == self.literal_prefix;
        }
        let Some(rest) = value
            .strip_prefix(self.literal_prefix.as_str())
            .and_then(|rest| rest.strip_suffix(self.literal_suffix.as_str()))
        else {
            return false;
        };
        match self.middle {
            Middle::Anything => return true,
            Middle::NoSlash => return !rest.contains('/'),
            Middle::Automaton => {}
        }
        self.automaton.matches(rest)
    }
}

/// The characters of a run of literal tokens.
fn literal_text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .filter_map(|token| match token {
            Token::Atom(CharMatcher::Literal(character), Repeat::One) => Some(*character),
            _ => None,
        })
        .collect()
}

/// Turns the pattern text (after any `!`) into tokens; `offset` is the number of characters
/// before `body` in `pattern`, so that columns in errors count from the pattern's start.
fn parse(pattern: &str, body: &str, offset: usize) -> Result<Vec<Token>, String> {
    let characters: Vec<char> = body.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        let column = offset + index + 1;
        match characters[index] {
            '\\' => {
                let Some(escaped) = characters.get(index + 1) else {
                    return Err(format!(
                        "pattern `{pattern}` ends with a lone `\\`; write `\\\\` to match a backslash"
                    ));
                };
                tokens.push(Token::Atom(CharMatcher::Literal(*escaped), Repeat::One));
                index += 2;
            }
            '*' if characters.get(index + 1) == Some(&'*') => {
                let at_segment_start = index == 0 || characters[index - 1] == '/';
                if at_segment_start && characters.get(index + 2) == Some(&'/') {
                    // `**/` matches nothing, or any text that ends with `/`.
                    let group_start = tokens.len();
                    tokens.push(Token::SkipTo(group_start + 3));
                    tokens.push(Token::Atom(CharMatcher::Any, Repeat::ZeroOrMore));
                    tokens.push(Token::Atom(CharMatcher::Literal('/'), Repeat::One));
                    index += 3;
                } else {
                    tokens.push(Token::Atom(CharMatcher::Any, Repeat::ZeroOrMore));
                    index += 2;
                }
            }
            '*' => {
                tokens.push(Token::Atom(CharMatcher::AnyButSlash, Repeat::ZeroOrMore));
                index += 1;
            }
            quantifier @ ('?' | '+') => {
                let previous = match tokens.last() {
                    Some(Token::Atom(matcher, Repeat::One)) => matcher.clone(),
                    _ => {
                        return Err(format!(
                            "pattern `{pattern}` has `{quantifier}` at column {column} with no single character before it to repeat; write `\\{quantifier}` to match it literally"
                        ));
                    }
                };
                if quantifier == '?' {
                    tokens.pop();
                    tokens.push(Token::Atom(previous, Repeat::ZeroOrOne));
                } else {
                    tokens.push(Token::Atom(previous, Repeat::ZeroOrMore));
                }
                index += 1;
            }
            '[' => {
                let (ranges, next_index) = parse_class(pattern, &characters, index, offset)?;
                tokens.push(Token::Atom(CharMatcher::Class(ranges), Repeat::One));
                index = next_index;
            }
            literal => {
                tokens.push(Token::Atom(CharMatcher::Literal(literal), Repeat::One));
                index += 1;
            }
        }
    }
    Ok(tokens)
}

/// Parses `[...]` starting at `open` (the `[`); returns the ranges and the index after the `]`.
fn parse_class(
    pattern: &str,
    characters: &[char],
    open: usize,
    offset: usize,
) -> Result<(Vec<(char, char)>, usize), String> {
    let column = offset + open + 1;
    let mut members: Vec<char> = Vec::new();
    // Which members were written with `\`, so that an escaped `-` is never a range.
    let mut escaped: Vec<bool> = Vec::new();
    let mut index = open + 1;
    loop {
        match characters.get(index) {
            None => {
                return Err(format!(
                    "pattern `{pattern}` has an unclosed `[` at column {column}; close it with `]` or write `\\[` to match it literally"
                ));
            }
            Some(']') => break,
            Some('\\') => {
                let Some(next) = characters.get(index + 1) else {
                    return Err(format!(
                        "pattern `{pattern}` ends with a lone `\\`; write `\\\\` to match a backslash"
                    ));
                };
                members.push(*next);
                escaped.push(true);
                index += 2;
            }
            Some(member) => {
                members.push(*member);
                escaped.push(false);
                index += 1;
            }
        }
    }
    if members.is_empty() {
        return Err(format!(
            "pattern `{pattern}` has an empty `[]` at column {column}; list characters or ranges such as `[0-9a-z]`"
        ));
    }
    let mut ranges = Vec::new();
    let mut position = 0;
    while position < members.len() {
        let is_range =
            position + 2 < members.len() && members[position + 1] == '-' && !escaped[position + 1];
        if is_range {
            let (low, high) = (members[position], members[position + 2]);
            let kinds: [fn(&char) -> bool; 3] = [
                char::is_ascii_lowercase,
                char::is_ascii_uppercase,
                char::is_ascii_digit,
            ];
            let same_kind = kinds.iter().any(|kind| kind(&low) && kind(&high));
            if !same_kind || low > high {
                return Err(format!(
                    "pattern `{pattern}` has an invalid range `{low}-{high}` in the `[...]` at column {column}; ranges run upwards within a-z, A-Z or 0-9"
                ));
            }
            ranges.push((low, high));
            position += 3;
        } else {
            ranges.push((members[position], members[position]));
            position += 1;
        }
    }
    Ok((ranges, index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_match(pattern: &str, value: &str, expect: bool) {
        let compiled = Pattern::compile(pattern).expect("pattern compiles");
        assert_eq!(
            compiled.matches(value),
            expect,
            "pattern `{pattern}` against `{value}`"
        );
    }

    #[test]
    fn star_stops_at_slash_and_double_star_does_not() {
        check_match("feature/*", "feature/my-branch", true);
        check_match("feature/*", "feature/a/b", false);
        check_match("feature/**", "feature/a/b", true);
        check_match("*", "", true);
        check_match("**", "a/b/c", true);
    }

    #[test]
    fn quantifiers_repeat_the_preceding_character_or_class() {
        check_match("*.jsx?", "page.js", true);
        check_match("*.jsx?", "page.jsx", true);
        check_match("*.jsx?", "page.jsxx", false);
        check_match("v[0-9]+", "v", false);
        check_match("v[0-9]+", "v123", true);
        check_match("\\?", "?", true);
    }

    #[test]
    fn double_star_slash_matches_zero_directories() {
        check_match("**/README.md", "README.md", true);
        check_match("**/README.md", "a/b/README.md", true);
        check_match("**/README.md", "xREADME.md", false);
        check_match("a/**/b", "a/b", true);
        check_match("a/**/b", "a/x/y/b", true);
    }

    #[test]
    fn literal_prefix_and_suffix_never_overlap() {
        check_match("a*a", "a", false);
        check_match("a*a", "aa", true);
        check_match("ab*ba", "aba", false);
        check_match("ab*ba", "abba", true);
        check_match("x**/y", "xy", false);
        check_match("**/y", "y", true);
        check_match("v1.0?", "v1.", true);
    }

    #[test]
    fn long_patterns_use_the_multi_word_automaton() {
        let long_pattern = format!("{}*{}", "a/".repeat(40), "z?".repeat(20));
        let matching = format!("{}anything{}", "a/".repeat(40), "z".repeat(10));
        check_match(&long_pattern, &matching, true);
        check_match(&long_pattern, &format!("{matching}/"), false);
    }

    #[test]
    fn syntax_errors_name_the_pattern_and_the_column() {
        let problem = check("v[12").unwrap_err();
        assert!(
            problem.contains("`v[12`") && problem.contains("column 2"),
            "{problem}"
        );
        assert!(check("+a").unwrap_err().contains("column 1"));
        assert!(check("*?").is_err());
        assert!(check("a\\").is_err());
        assert!(check("[]").is_err());
        assert!(check("[z-a]").is_err());
        assert!(check("").is_err());
        assert!(check("!").is_err());
        assert!(check("[a\\-z]").is_ok());
    }
}
