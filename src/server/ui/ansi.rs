//! A job's log as HTML: text escaped, ANSI colour and bold codes turned into spans, every other
//! escape sequence dropped. What reaches here was redacted when it was written.

/// Renders `text` (any part of a log) as HTML. Colours do not carry across calls: each chunk of a
/// streamed log starts plain, as each line of most tools does.
pub fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut colour: Option<u8> = None;
    let mut bold = false;
    let mut open = false;
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut parameters = String::new();
                let mut last = None;
                for next in chars.by_ref() {
                    if next.is_ascii_digit() || next == ';' {
                        parameters.push(next);
                    } else {
                        last = Some(next);
                        break;
                    }
                }
                if last != Some('m') {
                    continue;
                }
                for code in parameters.split(';') {
                    match code.parse::<u8>().unwrap_or(0) {
                        0 => {
                            colour = None;
                            bold = false;
                        }
                        1 => bold = true,
                        22 => bold = false,
                        code @ 30..=37 => colour = Some(code),
                        code @ 90..=97 => colour = Some(code - 60),
                        39 => colour = None,
                        _ => {}
                    }
                }
                if open {
                    out.push_str("</span>");
                    open = false;
                }
                if colour.is_some() || bold {
                    let mut classes = Vec::new();
                    if let Some(colour) = colour {
                        classes.push(format!("ansi-{colour}"));
                    }
                    if bold {
                        classes.push("ansi-bold".to_owned());
                    }
                    out.push_str(&format!("<span class=\"{}\">", classes.join(" ")));
                    open = true;
                }
            }
            '\r' => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    if open {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn colours_become_spans_and_markup_is_escaped() {
        assert_eq!(
            to_html("\u{1b}[1;31merror\u{1b}[0m: <script>&"),
            "<span class=\"ansi-31 ansi-bold\">error</span>: &lt;script&gt;&amp;"
        );
    }

    #[test]
    fn bright_colours_map_to_their_base_and_other_sequences_vanish() {
        assert_eq!(
            to_html("\u{1b}[92mok\u{1b}[39m \u{1b}[2Kdone\r\n"),
            "<span class=\"ansi-32\">ok</span> done\n"
        );
    }

    #[test]
    fn an_unclosed_colour_is_closed_at_the_end() {
        assert_eq!(
            to_html("\u{1b}[33mwarn"),
            "<span class=\"ansi-33\">warn</span>"
        );
    }
}
