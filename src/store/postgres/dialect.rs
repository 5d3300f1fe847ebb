//! The store's queries as PostgreSQL reads them: SQLite's numbered parameters (`?1`) and bare
//! `?` become `$1`, `$2`, ...; text inside quotes is left alone. Everything else the store writes
//! is SQL both databases accept.

/// Rewrites the parameter marks of `sql` for PostgreSQL.
pub(crate) fn parameters(sql: &str) -> String {
    let mut rewritten = String::with_capacity(sql.len() + 8);
    let mut characters = sql.chars().peekable();
    let mut next_bare = 1;
    let mut quote: Option<char> = None;
    while let Some(character) = characters.next() {
        if let Some(open) = quote {
            rewritten.push(character);
            if character == open {
                quote = None;
            }
            continue;
        }
        match character {
            '\'' | '"' => {
                quote = Some(character);
                rewritten.push(character);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(digit) = characters.peek().filter(|next| next.is_ascii_digit()) {
                    digits.push(*digit);
                    characters.next();
                }
                rewritten.push('$');
                if digits.is_empty() {
                    rewritten.push_str(&next_bare.to_string());
                    next_bare += 1;
                } else {
                    rewritten.push_str(&digits);
                }
            }
            other => rewritten.push(other),
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_bare_marks_become_dollar_parameters_outside_quotes() {
        assert_eq!(
            parameters("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?3'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?3'"
        );
        assert_eq!(
            parameters("WHERE x = ? AND y = ? LIMIT ?"),
            "WHERE x = $1 AND y = $2 LIMIT $3"
        );
        assert_eq!(
            parameters("json ->> '$.number' = ?2"),
            "json ->> '$.number' = $2"
        );
    }
}
