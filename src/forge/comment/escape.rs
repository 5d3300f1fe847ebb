//! Making untrusted text harmless in a comment: plan lines, log lines and file names can hold
//! `@org/team`, HTML or backticks. Text is put either inline (every Markdown and HTML character
//! escaped, mentions broken) or in a code block whose fence is longer than any backtick run
//! inside it, so it cannot be closed from within. Pure string functions.

/// Put after `@` so that GitHub does not see a mention (and notify a team), while readers still
/// see `@`.
const MENTION_BREAKER: char = '\u{200B}';

/// Text shown inline in Markdown: Markdown punctuation is backslash-escaped, `<` and `>` become
/// entities, mentions are broken and line breaks become spaces.
pub fn inline(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '@' => {
                escaped.push('@');
                escaped.push(MENTION_BREAKER);
            }
            '\n' | '\r' => escaped.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' => {
                escaped.push('\\');
                escaped.push(character);
            }
            other => escaped.push(other),
        }
    }
    escaped
}

/// Text shown in a fenced code block (`language` may be empty). The fence is one backtick
/// longer than the longest run of backticks in the text, so nothing inside can close it;
/// GitHub neither links mentions nor renders HTML inside a code block.
pub fn code_block(text: &str, language: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    let mut block = format!("{fence}{language}\n{text}");
    if !text.ends_with('\n') {
        block.push('\n');
    }
    block.push_str(&fence);
    block.push('\n');
    block
}

/// A safety net for Markdown a step kind contributed: outside its code blocks, mentions are
/// broken and `<`/`>` become entities (so no `<details>` or `</details>` of its own can break
/// the comment's structure); a code block left open is closed at the end.
pub fn contributed_markdown(markdown: &str) -> String {
    let mut safe = String::with_capacity(markdown.len() + 16);
    let mut open_fence: Option<String> = None;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        match &open_fence {
            Some(fence) => {
                let content = trimmed.trim_end();
                if content.starts_with(fence.as_str())
                    && content
                        .chars()
                        .all(|character| character == fence_char(fence))
                {
                    open_fence = None;
                }
                safe.push_str(line);
            }
            None => {
                if let Some(fence) = fence_opener(trimmed) {
                    open_fence = Some(fence);
                    safe.push_str(line);
                } else {
                    safe.push_str(&defuse_line(line));
                }
            }
        }
    }
    if let Some(fence) = open_fence {
        if !safe.ends_with('\n') {
            safe.push('\n');
        }
        safe.push_str(&fence);
        safe.push('\n');
    }
    safe
}

/// The fence a line opens (three or more backticks or tildes), if it opens one.
pub(super) fn fence_opener(trimmed_line: &str) -> Option<String> {
    let first = trimmed_line.chars().next()?;
    if first != '`' && first != '~' {
        return None;
    }
    let length = trimmed_line
        .chars()
        .take_while(|character| *character == first)
        .count();
    (length >= 3).then(|| first.to_string().repeat(length))
}

fn fence_char(fence: &str) -> char {
    fence.chars().next().unwrap_or('`')
}

fn defuse_line(line: &str) -> String {
    let mut defused = String::with_capacity(line.len());
    for character in line.chars() {
        match character {
            '<' => defused.push_str("&lt;"),
            '>' => defused.push_str("&gt;"),
            '@' => {
                defused.push('@');
                defused.push(MENTION_BREAKER);
            }
            other => defused.push(other),
        }
    }
    defused
}

pub(super) use crate::terraform::summary::longest_backtick_run;

#[cfg(test)]
mod tests {
    use super::*;

    fn check_inline(input: &str, expect: &str) {
        assert_eq!(inline(input), expect, "{input:?}");
    }

    #[test]
    fn inline_text_cannot_mention_link_or_open_html() {
        check_inline("plain", "plain");
        check_inline("@org/team", "@\u{200B}org/team");
        check_inline("<details>", "&lt;details&gt;");
        check_inline("a`b", "a\\`b");
        check_inline("[x](http://e)", "\\[x\\]\\(http://e\\)");
        check_inline("two\nlines", "two lines");
    }

    #[test]
    fn a_code_block_fence_is_longer_than_any_backticks_inside() {
        let block = code_block("before\n```\n@org/team\n", "diff");
        assert!(block.starts_with("````diff\n"), "{block}");
        assert!(block.ends_with("\n````\n"), "{block}");
        let block = code_block("no ticks", "");
        assert_eq!(block, "```\nno ticks\n```\n");
    }

    #[test]
    fn contributed_markdown_is_defused_outside_code_and_closed() {
        let safe = contributed_markdown("hi @org/team </details>\n```\n@keep <b>\n");
        assert_eq!(
            safe,
            "hi @\u{200B}org/team &lt;/details&gt;\n```\n@keep <b>\n```\n"
        );
        let safe = contributed_markdown("````\n```\n<x>\n````\nafter <y>\n");
        assert_eq!(safe, "````\n```\n<x>\n````\nafter &lt;y&gt;\n");
    }
}
