//! Removes secret values from a job's log before it is stored or shown: each secret as written,
//! its base64 and base64url forms (padded or not, wrapped at 76 or 64 columns as `base64` and
//! `openssl base64` print them), and each line of a secret that spans several (a PEM key). The
//! log arrives as a stream of pieces, so the redactor holds back the tail that could still grow
//! into a secret and hands out whole lines only. Knows text, nothing of steps or the store.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Secrets shorter than this are not redacted: they would mangle ordinary output and are not
/// worth hiding.
const SHORTEST_SECRET: usize = 4;

/// A line of a multi-line secret is redacted on its own when it has at least this many
/// characters (leading and trailing blanks aside) and is not PEM armour (`-----END ...-----`):
/// blank lines, `}` or `AQAB` would otherwise turn every log into stars. A key body line is 64
/// characters; at most the last, short one of a key can stay visible.
const SHORTEST_SECRET_LINE: usize = 8;

/// Widths at which base64 tools wrap their output: coreutils `base64` and `openssl base64`.
const BASE64_LINE_WIDTHS: [usize; 2] = [76, 64];

/// Replaces every occurrence of any secret form with `***`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first, so a secret containing another is hidden whole.
    needles: Vec<String>,
    /// Indexes into `needles` by first byte.
    starting_with: Vec<Vec<usize>>,
    /// Text received but not handed out yet: an unfinished line, or a tail that may be the
    /// start of a secret.
    pending: String,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut needles: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.trim().len() >= SHORTEST_SECRET)
            .flat_map(|secret| forms(&secret))
            .collect();
        needles.sort_by(|left, right| right.len().cmp(&left.len()).then(left.cmp(right)));
        needles.dedup();
        let mut starting_with = vec![Vec::new(); 256];
        for (index, needle) in needles.iter().enumerate() {
            starting_with[usize::from(needle.as_bytes()[0])].push(index);
        }
        Redactor {
            needles,
            starting_with,
            pending: String::new(),
        }
    }

    /// Takes the next piece of the stream; returns the lines now complete and known to hold no
    /// unfinished secret, redacted. The rest waits for the next piece or [`Redactor::finish`].
    pub fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        let (redacted, consumed) = self.scan(&self.pending, false);
        self.pending.drain(..consumed);
        redacted
    }

    /// The end of the stream: whatever was held back, redacted.
    pub fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        self.scan(&pending, true).0
    }

    /// Redacts a whole text at once.
    pub fn redact(&self, text: &str) -> String {
        self.scan(text, true).0
    }

    /// Redacts `text` from the start; returns the output and how many bytes of `text` it
    /// covers. Unless `at_end`, the output stops after the last line that is complete and does
    /// not run into a possible secret.
    fn scan(&self, text: &str, at_end: bool) -> (String, usize) {
        let mut output = String::with_capacity(text.len());
        let (mut committed_input, mut committed_output) = (0, 0);
        let mut index = 0;
        while index < text.len() {
            let rest = &text[index..];
            let candidates = self
                .starting_with
                .get(usize::from(rest.as_bytes()[0]))
                .map_or(&[][..], Vec::as_slice);
            if !at_end
                && candidates.iter().any(|&candidate| {
                    let needle = &self.needles[candidate];
                    needle.len() > rest.len() && needle.starts_with(rest)
                })
            {
                break;
            }
            if let Some(&found) = candidates
                .iter()
                .find(|&&candidate| rest.starts_with(self.needles[candidate].as_str()))
            {
                output.push_str("***");
                index += self.needles[found].len();
                continue;
            }
            let character = rest.chars().next().expect("rest is not empty");
            output.push(character);
            index += character.len_utf8();
            if character == '\n' {
                (committed_input, committed_output) = (index, output.len());
            }
        }
        if at_end {
            (committed_input, committed_output) = (index, output.len());
        }
        output.truncate(committed_output);
        (output, committed_input)
    }
}

/// What a secret may look like in a log.
fn forms(secret: &str) -> Vec<String> {
    let trimmed = secret.trim();
    let mut forms = vec![trimmed.to_owned()];
    // The bytes as given, without surrounding blanks, and either with the newline `echo` adds.
    let mut encoded_inputs = vec![
        secret.to_owned(),
        format!("{secret}\n"),
        trimmed.to_owned(),
        format!("{trimmed}\n"),
    ];
    encoded_inputs.sort();
    encoded_inputs.dedup();
    for input in &encoded_inputs {
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(input);
            for width in BASE64_LINE_WIDTHS {
                if encoded.len() > width {
                    forms.extend(
                        encoded
                            .as_bytes()
                            .chunks(width)
                            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                            .filter(|line| line.len() >= SHORTEST_SECRET_LINE),
                    );
                }
            }
            forms.push(encoded);
        }
    }
    if trimmed.contains('\n') {
        forms.extend(
            trimmed
                .lines()
                .map(str::trim)
                .filter(|line| line.chars().count() >= SHORTEST_SECRET_LINE)
                .filter(|line| !(line.starts_with("-----") && line.ends_with("-----")))
                .map(str::to_owned),
        );
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\nNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\nqgtzJ6GR3eqoYSW9b9UMvkBpZODSctWSNGj3P7jRFDO5VoTwCQAWbFnOjDfH5Ulg\np2PKSQnSJP3AJLQNFNe7br1XbrhV//eO+t51mIpGSDCUv3E0DDFcWDTH9cXDTTlR\nZVEiR2BwpZOOkE/Z0/BVnhZYL71oZV34bKfWjQIt6V/isSMahdsAASACp4ZTGtwi\nVuNd9tybAgMBAAE=\n-----END PRIVATE KEY-----\n";

    fn redactor(secrets: &[&str]) -> Redactor {
        Redactor::new(secrets.iter().map(|secret| secret.to_string()))
    }

    #[test]
    fn hides_every_occurrence_and_the_longest_secret_whole() {
        let redactor = redactor(&["hunter2-token", "hunter2", "ab"]);
        assert_eq!(
            redactor.redact("a hunter2-token b hunter2 ab"),
            "a *** b *** ab"
        );
    }

    #[test]
    fn base64_and_base64url_forms_are_hidden_padded_or_not() {
        // Chosen so that the standard and URL alphabets differ (`+/` against `-_`).
        let secret = "s3cr3t>>??~~value";
        let redactor = redactor(&[secret]);
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            for input in [secret.to_owned(), format!("{secret}\n")] {
                let encoded = engine.encode(&input);
                assert_eq!(
                    redactor.redact(&format!("token={encoded};")),
                    "token=***;",
                    "{encoded}"
                );
            }
        }
    }

    #[test]
    fn a_multi_line_secret_leaves_none_of_its_body_lines_however_it_is_printed() {
        let redactor = redactor(&[KEY]);
        let prefixed: String = KEY.lines().map(|line| format!("key: {line}\n")).collect();
        let shown = redactor.redact(&prefixed);
        for line in KEY.lines().filter(|line| !line.starts_with("-----")) {
            assert!(!shown.contains(line), "`{line}` is in:\n{shown}");
        }
        assert!(
            shown.starts_with("key: -----BEGIN PRIVATE KEY-----\nkey: ***\n"),
            "{shown}"
        );
        assert_eq!(
            redactor.redact(&format!("before\n{KEY}after\n")),
            "before\n***\nafter\n"
        );
        assert_eq!(redactor.redact("{\n}\n\nAQAB\n"), "{\n}\n\nAQAB\n");
    }

    #[test]
    fn wrapped_base64_of_a_key_is_hidden_line_by_line() {
        let redactor = redactor(&[KEY]);
        for width in BASE64_LINE_WIDTHS {
            let wrapped: String = STANDARD
                .encode(KEY)
                .as_bytes()
                .chunks(width)
                .map(|chunk| format!("{}\n", String::from_utf8_lossy(chunk)))
                .collect();
            let shown = redactor.redact(&wrapped);
            let visible: Vec<&str> = shown.lines().filter(|line| *line != "***").collect();
            assert!(
                visible.iter().all(|line| line.len() < SHORTEST_SECRET_LINE),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_secret_split_across_pieces_is_still_hidden_and_lines_stay_whole() {
        let mut redactor = redactor(&["hunter2-token"]);
        assert_eq!(redactor.push("first line\ntoken is hunt"), "first line\n");
        assert_eq!(redactor.push("er2-tok"), "");
        assert_eq!(redactor.push("en, ok\nlast"), "token is ***, ok\n");
        assert_eq!(redactor.finish(), "last");
        assert_eq!(redactor.finish(), "");
    }

    #[test]
    fn a_key_sent_one_line_at_a_time_is_hidden_whole() {
        let mut redactor = redactor(&[KEY]);
        let mut shown = redactor.push("loading\n");
        for line in KEY.lines() {
            shown.push_str(&redactor.push(&format!("{line}\n")));
        }
        shown.push_str(&redactor.push("done\n"));
        shown.push_str(&redactor.finish());
        assert_eq!(shown, "loading\n***\ndone\n");
    }

    #[test]
    fn a_held_back_start_that_never_becomes_a_secret_is_handed_out_at_the_end() {
        let mut redactor = redactor(&["hunter2-token"]);
        assert_eq!(redactor.push("ends with hunter2-to"), "");
        assert_eq!(redactor.finish(), "ends with hunter2-to");
    }
}
