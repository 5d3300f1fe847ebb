//! Where each Dockerfile instruction starts, so that a failed build step (`Step 3/7 : RUN ...`
//! in the engine's output) can be reported with its line. Knows the parser directives, comments,
//! empty lines and line continuations; nothing else of the Dockerfile language. Pure.

/// One instruction: the line it starts on (1-based) and its text with continuations joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub text: String,
}

impl Instruction {
    /// `RUN`, `FROM`...
    pub fn keyword(&self) -> String {
        self.text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }
}

/// The instructions in file order, which is the order the classic builder numbers its steps.
pub fn instructions(dockerfile: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut instructions = Vec::new();
    let mut current: Option<Instruction> = None;
    let mut directives_allowed = true;
    for (index, raw_line) in dockerfile.lines().enumerate() {
        let line_number = index + 1;
        let trimmed = raw_line.trim();
        if directives_allowed {
            if let Some((name, value)) = trimmed
                .strip_prefix('#')
                .and_then(|directive| directive.split_once('='))
            {
                if name.trim().eq_ignore_ascii_case("escape") {
                    escape = value.trim().chars().next().unwrap_or('\\');
                }
                continue;
            }
            directives_allowed = false;
        }
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (content, continues) = match trimmed.strip_suffix(escape) {
            Some(before) => (before.trim_end(), true),
            None => (trimmed, false),
        };
        match current.as_mut() {
            Some(instruction) => {
                if !content.is_empty() {
                    instruction.text.push(' ');
                    instruction.text.push_str(content);
                }
            }
            None => {
                current = Some(Instruction {
                    line: line_number,
                    text: content.to_owned(),
                });
            }
        }
        if !continues {
            instructions.extend(current.take());
        }
    }
    instructions.extend(current.take());
    instructions
}

/// The instruction the engine calls `Step <number>/<total> : <text>`: by number, checked
/// against the text, or else the first instruction with the same text.
pub fn find_step<'a>(
    instructions: &'a [Instruction],
    number: usize,
    text: &str,
) -> Option<&'a Instruction> {
    let squeeze = |value: &str| value.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = squeeze(text);
    let same = |instruction: &Instruction| squeeze(&instruction.text).eq_ignore_ascii_case(&wanted);
    number
        .checked_sub(1)
        .and_then(|index| instructions.get(index))
        .filter(|instruction| same(instruction))
        .or_else(|| instructions.iter().find(|instruction| same(instruction)))
        .or_else(|| {
            number
                .checked_sub(1)
                .and_then(|index| instructions.get(index))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\nARG BASE=x\n\nFROM ${BASE}\n# a comment\nRUN echo hi \\\n  # inside\n  && echo there\nCOPY . /app\nRUN exit 3\n";

    #[test]
    fn instructions_start_where_they_are_written() {
        let found = instructions(DOCKERFILE);
        let lines: Vec<(usize, &str)> = found
            .iter()
            .map(|instruction| (instruction.line, instruction.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (2, "ARG BASE=x"),
                (4, "FROM ${BASE}"),
                (6, "RUN echo hi && echo there"),
                (9, "COPY . /app"),
                (10, "RUN exit 3"),
            ]
        );
        assert_eq!(found[2].keyword(), "RUN");
    }

    #[test]
    fn a_step_is_found_by_number_and_text() {
        let found = instructions(DOCKERFILE);
        assert_eq!(find_step(&found, 5, "RUN exit 3").unwrap().line, 10);
        assert_eq!(
            find_step(&found, 3, "RUN echo hi   && echo there")
                .unwrap()
                .line,
            6
        );
        assert_eq!(find_step(&found, 1, "RUN exit 3").unwrap().line, 10);
        assert!(find_step(&found, 40, "HEALTHCHECK NONE").is_none());
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let found = instructions("# escape=`\nFROM x\nRUN a `\n  b\n");
        assert_eq!(found[1].line, 3);
        assert_eq!(found[1].text, "RUN a b");
    }
}
