//! Cutting Markdown into pieces that each stay valid: a cut inside a code block closes the fence
//! in the piece before and opens it again (same fence, same language) in the piece after, so no
//! piece starts or ends inside a block. Lengths are counted in characters. Pure.

use super::escape::fence_opener;

/// Splits `markdown` into pieces of at most `max_chars` characters each (`max_chars` must leave
/// room for a fence line, i.e. be well above 100). Lines are kept whole unless one alone is too
/// long, in which case it is cut at character boundaries.
pub fn split_markdown(markdown: &str, max_chars: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0usize;
    // The opening line of the code block we are inside (e.g. "````diff"), and its bare fence.
    let mut open_block: Option<(String, String)> = None;
    for line in markdown.split_inclusive('\n') {
        let line = if line.ends_with('\n') {
            line.to_owned()
        } else {
            format!("{line}\n")
        };
        let trimmed = line.trim();
        let closes = matches!(&open_block, Some((_, fence))
            if trimmed.starts_with(fence.as_str()) && trimmed.chars().all(|c| Some(c) == fence.chars().next()));
        let opens = if open_block.is_none() {
            fence_opener(trimmed).map(|fence| (trimmed.to_owned(), fence))
        } else {
            None
        };
        // Room kept for closing the block if we must cut after this line.
        let reserve = |block: &Option<(String, String)>| {
            block
                .as_ref()
                .map(|(_, fence)| fence.chars().count() + 1)
                .unwrap_or(0)
        };
        let mut rest: &str = &line;
        loop {
            let rest_chars = rest.chars().count();
            let limit = max_chars.saturating_sub(reserve(&open_block)).max(1);
            if current_chars + rest_chars <= limit {
                current.push_str(rest);
                current_chars += rest_chars;
                break;
            }
            if current_chars > 0 && rest_chars <= limit.saturating_sub(reopen_len(&open_block)) {
                // The line fits in a fresh piece: cut before it.
                finish_piece(&mut pieces, &mut current, &mut current_chars, &open_block);
                continue;
            }
            // The line alone is too long: take what fits, cut, go on with the remainder.
            let room = limit.saturating_sub(current_chars + 1).max(1);
            let split_at = rest
                .char_indices()
                .nth(room)
                .map(|(index, _)| index)
                .unwrap_or(rest.len());
            current.push_str(&rest[..split_at]);
            current.push('\n');
            current_chars += room + 1;
            rest = &rest[split_at..];
            finish_piece(&mut pieces, &mut current, &mut current_chars, &open_block);
            if rest.is_empty() {
                break;
            }
        }
        if closes {
            open_block = None;
        } else if let Some(opened) = opens {
            open_block = Some(opened);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn reopen_len(open_block: &Option<(String, String)>) -> usize {
    open_block
        .as_ref()
        .map(|(opener, _)| opener.chars().count() + 1)
        .unwrap_or(0)
}

/// Ends the current piece (closing an open block) and starts the next (reopening it).
fn finish_piece(
    pieces: &mut Vec<String>,
    current: &mut String,
    current_chars: &mut usize,
    open_block: &Option<(String, String)>,
) {
    if let Some((_, fence)) = open_block {
        current.push_str(fence);
        current.push('\n');
    }
    pieces.push(std::mem::take(current));
    *current_chars = 0;
    if let Some((opener, _)) = open_block {
        current.push_str(opener);
        current.push('\n');
        *current_chars = opener.chars().count() + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece has balanced fences and respects the size.
    fn assert_valid(pieces: &[String], max_chars: usize) {
        for piece in pieces {
            assert!(
                piece.chars().count() <= max_chars,
                "piece too long: {}",
                piece.len()
            );
            let mut open: Option<String> = None;
            for line in piece.lines() {
                let trimmed = line.trim();
                match &open {
                    Some(fence) if trimmed == fence => open = None,
                    Some(_) => {}
                    None => open = fence_opener(trimmed),
                }
            }
            assert!(open.is_none(), "piece ends inside a code block:\n{piece}");
        }
    }

    #[test]
    fn short_text_stays_whole() {
        assert_eq!(split_markdown("a\nb\n", 200), vec!["a\nb\n".to_owned()]);
    }

    #[test]
    fn a_long_code_block_is_closed_and_reopened_at_each_cut() {
        let mut markdown = String::from("intro\n\n```diff\n");
        for index in 0..100 {
            markdown.push_str(&format!("+ line {index:03}\n"));
        }
        markdown.push_str("```\nafter\n");
        let pieces = split_markdown(&markdown, 300);
        assert!(pieces.len() > 3, "{}", pieces.len());
        assert_valid(&pieces, 300);
        assert!(pieces[1].starts_with("```diff\n"), "{}", pieces[1]);
        let rejoined: String = pieces.concat();
        for index in 0..100 {
            assert!(rejoined.contains(&format!("+ line {index:03}\n")));
        }
        assert!(rejoined.ends_with("```\nafter\n"));
    }

    #[test]
    fn one_line_longer_than_a_piece_is_cut_at_character_boundaries() {
        let markdown = format!("```\n{}\n```\n", "é".repeat(1000));
        let pieces = split_markdown(&markdown, 150);
        assert_valid(&pieces, 150);
        let letters: usize = pieces.iter().map(|piece| piece.matches('é').count()).sum();
        assert_eq!(letters, 1000);
    }
}
