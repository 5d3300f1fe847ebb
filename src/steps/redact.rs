//! Removes secret values from log lines before they are stored.

/// Replaces every occurrence of any secret value with `***`.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Values shorter than 4 characters are not redacted: they would mangle ordinary output and
    /// are not worth hiding.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= 4)
            .collect();
        // Longest first, so a secret containing another is hidden whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut redacted = text.to_owned();
        for secret in &self.secrets {
            if redacted.contains(secret.as_str()) {
                redacted = redacted.replace(secret.as_str(), "***");
            }
        }
        redacted
    }
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    #[test]
    fn hides_every_occurrence_and_the_longest_secret_whole() {
        let redactor = Redactor::new([
            "hunter2-token".to_owned(),
            "hunter2".to_owned(),
            "ab".to_owned(),
        ]);
        assert_eq!(
            redactor.redact("a hunter2-token b hunter2 ab"),
            "a *** b *** ab"
        );
    }
}
