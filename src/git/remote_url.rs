//! Remote urls as sluice accepts them: what kind each is, how a relative local path becomes
//! absolute, which transport fetches it, and how a url is redacted before it reaches a message.
//! Pure apart from reading the current directory; knows nothing of repositories or fetching.

use std::path::Path;

/// The kinds of url a mirror can fetch from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlKind {
    /// A path on this machine, absolute after `normalize`.
    LocalPath,
    /// `file://...`
    File,
    /// `http://...` or `https://...`
    Https,
    /// `ssh://...`, `git+ssh://...` or the scp-like `user@host:owner/name.git`.
    Ssh,
    /// `git://...`
    GitProtocol,
    /// Any other `scheme://...`; only the git command may know it.
    Other,
}

/// Who performs a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// In process, through libgit2.
    Libgit2,
    /// The `git` command, for transports this build of libgit2 was compiled without.
    GitCommand,
}

pub(crate) fn classify(url: &str) -> UrlKind {
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "file" => UrlKind::File,
            "http" | "https" => UrlKind::Https,
            "ssh" | "git+ssh" | "ssh+git" => UrlKind::Ssh,
            "git" => UrlKind::GitProtocol,
            _ => UrlKind::Other,
        };
    }
    // The rule git itself uses: a colon before any slash makes `host:path` an scp-like ssh url.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) if colon < slash => UrlKind::Ssh,
        (Some(_), None) => UrlKind::Ssh,
        _ => UrlKind::LocalPath,
    }
}

/// Trims the url and makes a relative local path absolute against the current directory, so the
/// stored remote does not depend on where sluice was started.
pub(crate) fn normalize(url: &str) -> Result<String, String> {
    let trimmed_url = url.trim();
    if trimmed_url.is_empty() {
        return Err(
            "the url is empty; give an https://, ssh:// or file:// url or a local path".into(),
        );
    }
    if classify(trimmed_url) != UrlKind::LocalPath {
        return Ok(trimmed_url.to_string());
    }
    let absolute_path = std::path::absolute(Path::new(trimmed_url))
        .map_err(|error| format!("cannot make the local path absolute: {error}"))?;
    absolute_path.into_os_string().into_string().map_err(|_| {
        "the local path is not valid UTF-8; move the repository to a UTF-8 path".into()
    })
}

/// libgit2 handles local paths, file:// and git:// itself; https and ssh only when it was built
/// with them. Everything else goes to the git command, which has the user's ssh setup too.
pub(crate) fn choose_transport(
    kind: UrlKind,
    libgit2_has_https: bool,
    libgit2_has_ssh: bool,
) -> Transport {
    match kind {
        UrlKind::LocalPath | UrlKind::File | UrlKind::GitProtocol => Transport::Libgit2,
        UrlKind::Https if libgit2_has_https => Transport::Libgit2,
        UrlKind::Ssh if libgit2_has_ssh => Transport::Libgit2,
        UrlKind::Https | UrlKind::Ssh | UrlKind::Other => Transport::GitCommand,
    }
}

/// Replaces the password of every `scheme://user:password@host` in `text` with `***`, so that a
/// url someone wrote with a token inside never reaches a log line or an error message.
pub(crate) fn redact_credentials(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(separator) = rest.find("://") {
        let authority_start = separator + 3;
        redacted.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let authority_end = rest
            .find(|character: char| character == '/' || character.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let user_information = &authority[..at];
                match user_information.split_once(':') {
                    Some((user, _password)) => {
                        redacted.push_str(user);
                        redacted.push_str(":***");
                    }
                    // A lone user name is usually a token in GitHub's `https://TOKEN@host` form.
                    None if user_information != "git" => redacted.push_str("***"),
                    None => redacted.push_str(user_information),
                }
                redacted.push_str(&authority[at..]);
            }
            None => redacted.push_str(authority),
        }
        rest = &rest[authority_end..];
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_kind(url: &str, expected: UrlKind) {
        assert_eq!(classify(url), expected, "url {url:?}");
    }

    #[test]
    fn urls_are_classified_like_git_does() {
        check_kind("/srv/git/platform", UrlKind::LocalPath);
        check_kind("../platform", UrlKind::LocalPath);
        check_kind("platform", UrlKind::LocalPath);
        check_kind("./dir:with/colon", UrlKind::LocalPath);
        check_kind("file:///srv/git/platform", UrlKind::File);
        check_kind("https://github.com/acme/platform.git", UrlKind::Https);
        check_kind("HTTP://example.com/acme/platform", UrlKind::Https);
        check_kind("ssh://git@github.com/acme/platform.git", UrlKind::Ssh);
        check_kind("git@github.com:acme/platform.git", UrlKind::Ssh);
        check_kind("host:platform", UrlKind::Ssh);
        check_kind("git://example.com/platform", UrlKind::GitProtocol);
        check_kind("s3://bucket/platform", UrlKind::Other);
    }

    #[test]
    fn relative_local_paths_become_absolute() {
        let current_directory = std::env::current_dir().unwrap();
        let normalized = normalize(" repositories/platform ").unwrap();
        assert_eq!(
            Path::new(&normalized),
            current_directory.join("repositories/platform")
        );
        assert_eq!(normalize("/srv/platform").unwrap(), "/srv/platform");
        assert_eq!(
            normalize("https://github.com/acme/platform").unwrap(),
            "https://github.com/acme/platform"
        );
        assert!(normalize("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn transports_follow_what_libgit2_was_built_with() {
        use Transport::*;
        let check = |kind, https, ssh, expected| {
            assert_eq!(choose_transport(kind, https, ssh), expected, "{kind:?}")
        };
        check(UrlKind::LocalPath, false, false, Libgit2);
        check(UrlKind::File, false, false, Libgit2);
        check(UrlKind::GitProtocol, false, false, Libgit2);
        check(UrlKind::Https, false, true, GitCommand);
        check(UrlKind::Https, true, false, Libgit2);
        check(UrlKind::Ssh, true, false, GitCommand);
        check(UrlKind::Ssh, false, true, Libgit2);
        check(UrlKind::Other, true, true, GitCommand);
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        let check = |text: &str, expected: &str| assert_eq!(redact_credentials(text), expected);
        check(
            "https://user:s3cret@github.com/acme/platform",
            "https://user:***@github.com/acme/platform",
        );
        check(
            "fatal: https://ghp_token@github.com/a/b not found",
            "fatal: https://***@github.com/a/b not found",
        );
        check(
            "ssh://git@github.com/acme/platform.git",
            "ssh://git@github.com/acme/platform.git",
        );
        check("/srv/git/platform", "/srv/git/platform");
        check(
            "from https://a:b@x/ and http://c:d@y",
            "from https://a:***@x/ and http://c:***@y",
        );
        check("weird ://", "weird ://");
    }
}
