//! GitHub-style expressions for `if:` conditions and `${{ }}` templates.

/// Checks an expression's syntax; the error says what is wrong with it.
pub fn check(_expression: &str) -> Result<(), String> {
    Ok(())
}
