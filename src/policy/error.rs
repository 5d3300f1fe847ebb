//! Policy errors: every one names the file and, where known, the line and column, and fails the
//! check. Also reads the location out of regorus's messages (`--> file:line:col`). Knows nothing
//! of how errors are shown.

use std::fmt;

/// What went wrong, for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyErrorKind {
    /// A file could not be read.
    Read,
    /// A `.rego` file does not parse, or the policies do not compile together.
    Parse,
    /// A data file is not valid JSON or YAML, or conflicts with another.
    Data,
    /// A rule failed while being evaluated (conflicting values, a failing built-in, ...).
    Runtime,
    /// A `deny`/`violation`/`warn` rule yielded something that is not a message.
    Result,
    /// A module reads a part of `input` that sluice's policy input does not have.
    Input,
}

impl PolicyErrorKind {
    fn word(self) -> &'static str {
        match self {
            PolicyErrorKind::Read => "cannot read",
            PolicyErrorKind::Parse => "parse error",
            PolicyErrorKind::Data => "data error",
            PolicyErrorKind::Runtime => "runtime error",
            PolicyErrorKind::Result => "bad result",
            PolicyErrorKind::Input => "unknown input",
        }
    }
}

/// One error, located as precisely as the engine allows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    pub kind: PolicyErrorKind,
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The rule being evaluated, `package.rule`, when the error came from one.
    pub rule: Option<String>,
    pub message: String,
}

impl PolicyError {
    pub fn new(kind: PolicyErrorKind, file: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError {
            kind,
            file: file.into(),
            line: None,
            column: None,
            rule: None,
            message: message.into(),
        }
    }

    /// Builds an error from a regorus message, taking the file, line and column from its
    /// `--> file:line:col` marker; `fallback_file` (and `fallback_line`) where it has none.
    pub fn from_engine(
        kind: PolicyErrorKind,
        engine_error: &anyhow::Error,
        fallback_file: &str,
        fallback_line: Option<u32>,
    ) -> Self {
        let text = format!("{engine_error:#}");
        let (location, message) = split_engine_message(&text);
        let mut error = PolicyError::new(kind, fallback_file, message);
        error.line = fallback_line;
        if let Some((file, line, column)) = location {
            error.file = file;
            error.line = Some(line);
            error.column = Some(column);
        }
        error
    }

    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// `file:line:col`, as much of it as is known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            (Some(line), None) => format!("{}:{line}", self.file),
            _ => self.file.clone(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}: {}: {}",
            self.location(),
            self.kind.word(),
            self.message
        )?;
        if let Some(rule) = &self.rule {
            write!(formatter, " (while evaluating {rule})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// Every error found, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(formatter)?;
            }
            write!(formatter, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Splits a regorus message into its location and its one-line message. regorus writes
/// `\n--> file:line:col\n  |\n 3 | source line\n  |     ^\nerror: message`; errors that pass
/// through several layers may carry more text before or after it.
fn split_engine_message(text: &str) -> (Option<(String, u32, u32)>, String) {
    let mut location = None;
    let mut message_lines = Vec::new();
    let mut skipping_snippet = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(marker) = trimmed.strip_prefix("--> ") {
            if location.is_none() {
                location = parse_location(marker);
            }
            skipping_snippet = true;
            continue;
        }
        if skipping_snippet && (trimmed.starts_with('|') || starts_with_gutter(trimmed)) {
            continue;
        }
        skipping_snippet = false;
        let content = trimmed.strip_prefix("error: ").unwrap_or(trimmed);
        if !content.is_empty() {
            message_lines.push(content.to_owned());
        }
    }
    let message = if message_lines.is_empty() {
        text.trim().to_owned()
    } else {
        message_lines.join("; ")
    };
    (location, message)
}

/// ` 3 | text`: a line number followed by the gutter.
fn starts_with_gutter(line: &str) -> bool {
    let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
    !digits.is_empty() && line[digits.len()..].trim_start().starts_with('|')
}

fn parse_location(marker: &str) -> Option<(String, u32, u32)> {
    let mut parts = marker.trim().rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_owned();
    Some((file, line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect_location: Option<(&str, u32, u32)>, expect_message: &str) {
        let (location, message) = split_engine_message(text);
        assert_eq!(
            location,
            expect_location.map(|(file, line, column)| (file.to_owned(), line, column))
        );
        assert_eq!(message, expect_message);
    }

    #[test]
    fn locations_are_read_from_engine_messages() {
        check(
            "\n--> policies/a.rego:3:5\n  |\n3 | deny contains x if {\n  |     ^\nerror: unexpected eof",
            Some(("policies/a.rego", 3, 5)),
            "unexpected eof",
        );
        check(
            "while evaluating\n--> p/b.rego:12:1\n   |\n12 | x := 2\n   | ^\nerror: rules should not produce multiple outputs.",
            Some(("p/b.rego", 12, 1)),
            "while evaluating; rules should not produce multiple outputs.",
        );
        check("no location at all", None, "no location at all");
    }

    #[test]
    fn display_names_file_line_kind_and_rule() {
        let error = PolicyError {
            kind: PolicyErrorKind::Runtime,
            file: "policies/t.rego".to_owned(),
            line: Some(7),
            column: Some(2),
            rule: Some("terraform.tags.deny".to_owned()),
            message: "division by zero".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "policies/t.rego:7:2: runtime error: division by zero (while evaluating terraform.tags.deny)"
        );
    }
}
