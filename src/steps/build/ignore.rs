//! `.dockerignore` with Docker's semantics: one pattern a line, `#` comments, `!` exceptions,
//! later patterns overriding earlier ones, `*` and `?` within one path segment, `**` across
//! segments, `[...]` classes, `\` escapes, and a pattern that matches a directory excluding
//! everything under it. Pure: it sees relative paths with `/` separators, never the file system.

/// One line of a `.dockerignore`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    /// As written after cleaning, for messages.
    text: String,
    tokens: Vec<Token>,
    /// `!pattern`: re-includes what earlier patterns excluded.
    exception: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters but `/`.
    AnyInSegment,
    /// `?`: one character but `/`.
    OneInSegment,
    /// `**` followed by more pattern: any number of whole directories, even none (`(.*/)?`).
    AnyDirectories,
    /// `**` at the end: anything at all.
    AnyRest,
    /// `[...]`: one character (never `/`) in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// The patterns of one `.dockerignore`, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses the file's text. Docker accepts every line, so this never fails.
    pub fn parse(text: &str) -> IgnoreRules {
        let patterns = text
            .lines()
            .filter_map(|line| {
                if line.starts_with('#') {
                    return None;
                }
                let mut pattern = line.trim();
                let exception = pattern.starts_with('!');
                if exception {
                    pattern = pattern[1..].trim();
                }
                if pattern.is_empty() {
                    return None;
                }
                let cleaned = clean(pattern);
                if cleaned.is_empty() {
                    return None;
                }
                Some(Pattern {
                    tokens: compile(&cleaned),
                    text: cleaned,
                    exception,
                })
            })
            .collect();
        IgnoreRules { patterns }
    }

    /// Keeps `path` in the context whatever the patterns say (Docker does so for the
    /// Dockerfile and the `.dockerignore` itself).
    pub fn always_include(&mut self, path: &str) {
        let cleaned = clean(path);
        self.patterns.push(Pattern {
            tokens: cleaned.chars().map(literal_or_escape).collect(),
            text: cleaned,
            exception: true,
        });
    }

    /// Whether any `!` pattern exists; without one an excluded directory need not be entered.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|pattern| pattern.exception)
    }

    /// Whether the relative path (`a/b/c.txt`) is left out of the context: the last pattern
    /// that matches the path or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for pattern in &self.patterns {
            if pattern_matches_path_or_parent(pattern, path) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }
}

fn literal_or_escape(character: char) -> Token {
    Token::Literal(character)
}

fn pattern_matches_path_or_parent(pattern: &Pattern, path: &str) -> bool {
    if matches(&pattern.tokens, &path.chars().collect::<Vec<_>>()) {
        return true;
    }
    // Docker also tries every parent directory, so `build` excludes `build/a/b`.
    let mut end = 0;
    while let Some(offset) = path[end..].find('/') {
        let parent = &path[..end + offset];
        if matches(&pattern.tokens, &parent.chars().collect::<Vec<_>>()) {
            return true;
        }
        end += offset + 1;
    }
    false
}

/// Go's `filepath.Clean` on a slash path, then without a leading `/`.
fn clean(pattern: &str) -> String {
    let rooted = pattern.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if joined.is_empty() && !rooted {
        ".".to_owned()
    } else {
        joined
    }
}

fn compile(pattern: &str) -> Vec<Token> {
    let characters: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        index += 1;
        match character {
            '*' if characters.get(index) == Some(&'*') => {
                index += 1;
                if characters.get(index) == Some(&'/') {
                    index += 1;
                }
                if index >= characters.len() {
                    tokens.push(Token::AnyRest);
                } else {
                    tokens.push(Token::AnyDirectories);
                }
            }
            '*' => tokens.push(Token::AnyInSegment),
            '?' => tokens.push(Token::OneInSegment),
            '\\' if index < characters.len() => {
                tokens.push(Token::Literal(characters[index]));
                index += 1;
            }
            '[' => match parse_class(&characters[index..]) {
                Some((token, consumed)) => {
                    tokens.push(token);
                    index += consumed;
                }
                None => tokens.push(Token::Literal('[')),
            },
            other => tokens.push(Token::Literal(other)),
        }
    }
    tokens
}

/// Parses the inside of `[...]` (after the `[`); returns the token and how many characters it
/// used, closing bracket included. `None` when there is no closing bracket.
fn parse_class(characters: &[char]) -> Option<(Token, usize)> {
    let mut index = 0;
    let negated = matches!(characters.first(), Some('^') | Some('!'));
    if negated {
        index += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while index < characters.len() {
        let mut low = characters[index];
        if low == ']' && !first {
            return Some((Token::Class { negated, ranges }, index + 1));
        }
        first = false;
        index += 1;
        if low == '\\' && index < characters.len() {
            low = characters[index];
            index += 1;
        }
        let mut high = low;
        if characters.get(index) == Some(&'-')
            && characters.get(index + 1).is_some_and(|next| *next != ']')
        {
            high = characters[index + 1];
            index += 2;
            if high == '\\' && index < characters.len() {
                high = characters[index];
                index += 1;
            }
        }
        ranges.push((low, high));
    }
    None
}

/// Backtracking match of the whole text against the tokens.
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match token {
        Token::Literal(expected) => text.first() == Some(expected) && matches(rest, &text[1..]),
        Token::OneInSegment => {
            text.first().is_some_and(|character| *character != '/') && matches(rest, &text[1..])
        }
        Token::Class { negated, ranges } => text.first().is_some_and(|character| {
            *character != '/'
                && ranges
                    .iter()
                    .any(|(low, high)| low <= character && character <= high)
                    != *negated
                && matches(rest, &text[1..])
        }),
        Token::AnyInSegment => {
            for length in 0..=text.len() {
                if matches(rest, &text[length..]) {
                    return true;
                }
                if text.get(length) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Token::AnyDirectories => {
            if matches(rest, text) {
                return true;
            }
            (0..text.len())
                .filter(|index| text[*index] == '/')
                .any(|index| matches(rest, &text[index + 1..]))
        }
        Token::AnyRest => true,
    }
}

#[cfg(test)]
mod tests {
    use super::IgnoreRules;

    fn check(ignore_file: &str, path: &str, expect_excluded: bool) {
        let rules = IgnoreRules::parse(ignore_file);
        assert_eq!(
            rules.excludes(path),
            expect_excluded,
            "`{path}` with .dockerignore {ignore_file:?}"
        );
    }

    #[test]
    fn docker_semantics() {
        check("", "a.txt", false);
        check("a.txt", "a.txt", true);
        check("a.txt", "b/a.txt", false);
        check("/a.txt", "a.txt", true);
        check("./a.txt", "a.txt", true);
        check("build", "build/out/x.o", true);
        check("build/", "build/x.o", true);
        check("*.log", "debug.log", true);
        check("*.log", "logs/debug.log", false);
        check("*/*.log", "logs/debug.log", true);
        check("**/*.log", "logs/deep/debug.log", true);
        check("**/*.log", "debug.log", true);
        check("data/**", "data/a/b.bin", true);
        check("data/**", "data", false);
        check("a/**/b", "a/b", true);
        check("a/**/b", "a/x/y/b", true);
        check("a/**/b", "a/x/y/c", false);
        check("?.txt", "a.txt", true);
        check("?.txt", "ab.txt", false);
        check("[a-c].txt", "b.txt", true);
        check("[a-c].txt", "d.txt", false);
        check("[^a-c].txt", "d.txt", true);
        check("\\*.txt", "*.txt", true);
        check("\\*.txt", "a.txt", false);
        check("# comment\n\n  spaced.txt  ", "spaced.txt", true);
        check("#a.txt", "#a.txt", false);
        check("../a.txt", "a.txt", false);
    }

    #[test]
    fn exceptions_and_order() {
        check("*.md\n!README.md", "README.md", false);
        check("*.md\n!README.md", "CHANGES.md", true);
        check("!README.md\n*.md", "README.md", true);
        check("data\n!data/keep.txt", "data/keep.txt", false);
        check("data\n!data/keep.txt", "data/drop.txt", true);
        check("*\n!src\n", "src/main.py", false);
        check("*\n!src\n", "tests/x.py", true);
        check("*\n! src \n", "src/main.py", false);
    }

    #[test]
    fn always_included_paths_beat_patterns() {
        let mut rules = IgnoreRules::parse("*\n");
        rules.always_include("images/trainer/Dockerfile");
        assert!(!rules.excludes("images/trainer/Dockerfile"));
        assert!(rules.excludes("images/trainer/other"));
        assert!(rules.has_exceptions());
    }
}
