//! How deeply a JSON document nests, found in one pass over its bytes with a counter instead of
//! recursion, so that a hostile body nested a million levels deep costs one linear scan and no
//! stack. Brackets inside strings (escaped quotes included) do not count. It checks nesting only;
//! whether the document is valid JSON is the parser's business.

/// GitHub's payloads nest about ten levels; anything past this is refused before it is stored.
/// serde_json's own parser stops one level earlier (it refuses 128 levels when building a
/// `Value`), so a body exactly at this limit is stored and then recorded once, never retried, as
/// a payload error by the intake.
pub const MAX_JSON_DEPTH: usize = 128;

/// Where a document first nests deeper than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub limit: usize,
    /// Byte offset of the bracket that went one level too deep.
    pub offset: usize,
}

/// `Ok` when no array or object in `document` nests deeper than `limit` levels (a top-level
/// object is level 1).
pub fn check_depth(document: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, byte) in document.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                (false, _) => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { limit, offset });
                }
            }
            // Unbalanced closers are the parser's to report; they never make nesting deeper.
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_level_more_is_refused_where_it_happens() {
        assert_eq!(check_depth(nested(128).as_bytes(), MAX_JSON_DEPTH), Ok(()));
        assert_eq!(
            check_depth(nested(129).as_bytes(), MAX_JSON_DEPTH),
            Err(TooDeep {
                limit: 128,
                offset: 128
            })
        );
    }

    #[test]
    fn objects_and_arrays_count_alike_and_siblings_do_not_add_up() {
        // Deepest: object, array, object, array (`[2]`); the siblings around it add nothing.
        let document = br#"{"a": [{"b": 1}, {"c": [2]}], "d": {"e": {}}}"#;
        assert_eq!(check_depth(document, 4), Ok(()));
        assert_eq!(
            check_depth(document, 3),
            Err(TooDeep {
                limit: 3,
                offset: 23
            })
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let document = br#"{"message": "[[[[[[{{{{{{", "k[": "}}}]]]"}"#;
        assert_eq!(check_depth(document, 1), Ok(()));
    }

    #[test]
    fn an_escaped_quote_does_not_end_the_string() {
        // Without the escape the brackets after `\"` would be outside the string.
        let document = br#"{"text": "say \"[[[[\" twice"}"#;
        assert_eq!(check_depth(document, 1), Ok(()));
    }

    #[test]
    fn an_escaped_backslash_before_a_quote_ends_the_string() {
        // `"\\"` is a string holding one backslash; the brackets after it are real.
        let document = br#"{"path": "C:\\", "deep": [[1]]}"#;
        assert_eq!(check_depth(document, 3), Ok(()));
        assert_eq!(
            check_depth(document, 2),
            Err(TooDeep {
                limit: 2,
                offset: 26
            })
        );
    }

    #[test]
    fn a_hostile_body_a_hundred_thousand_levels_deep_is_refused_without_recursion() {
        let document = format!(r#"{{"a": {}}}"#, nested(100_000));
        let refused = check_depth(document.as_bytes(), MAX_JSON_DEPTH).unwrap_err();
        assert_eq!(refused.limit, MAX_JSON_DEPTH);
        // Unbalanced closers alone never nest.
        assert_eq!(check_depth("]]]]}}}}".as_bytes(), 0), Ok(()));
    }
}
