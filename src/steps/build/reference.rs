//! Image names and tags: splitting `127.0.0.1:5000/ml/trainer` into registry and repository as
//! Docker does, checking names and tags against the distribution grammar, rendering tag templates
//! with git values made safe for tags (`feature/x` becomes `feature-x`), and the content tag under
//! which a registry may hold a candidate for reuse (the records decide). Pure.

use crate::config::expr;

/// Where a registry lives and what the repository is called there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `127.0.0.1:5000`, `registry.example.com`, or `docker.io`.
    pub registry: String,
    /// `trainer`, `ml/trainer`, or `library/busybox` on Docker Hub.
    pub repository: String,
    /// What the engine calls it: as written, registry included when one was written.
    pub full: String,
}

impl ImageName {
    /// Parses a repository name without tag or digest; `registry` is put in front when the
    /// name has no registry host of its own.
    pub fn parse(image: &str, registry: Option<&str>) -> Result<ImageName, String> {
        let image = image.trim();
        if image.contains('@') {
            return Err(format!(
                "image `{image}` contains a digest; give the repository only and list tags under `tags:`"
            ));
        }
        let joined = match registry.map(|registry| registry.trim().trim_end_matches('/')) {
            Some(registry) if !registry.is_empty() && !has_registry_host(image) => {
                format!("{registry}/{image}")
            }
            _ => image.to_owned(),
        };
        let (host, path) = match joined.split_once('/') {
            Some((first, rest)) if has_registry_host(&joined) => {
                (first.to_owned(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), joined.clone()),
        };
        let last_component = path.rsplit('/').next().unwrap_or("");
        if last_component.contains(':') {
            return Err(format!(
                "image `{image}` contains a tag; give the repository only and list tags under `tags:`"
            ));
        }
        let valid_component = |component: &str| {
            !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && component
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && component
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        };
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(format!(
                "image `{image}` is not a valid repository name; use lowercase letters, digits and `._-` between slashes, e.g. `127.0.0.1:5000/ml/trainer`"
            ));
        }
        let repository = if host == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(ImageName {
            registry: host,
            repository,
            full: joined,
        })
    }

    /// `name:tag`.
    pub fn tagged(&self, tag: &str) -> String {
        format!("{}:{tag}", self.full)
    }

    /// `name@sha256:...`: how everything downstream refers to the image.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.full)
    }
}

/// Docker's rule: the first component names a registry when it has a `.` or a `:` or is
/// `localhost`.
fn has_registry_host(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// The tag under which a trusted run also pushes an image so that a later build with the same
/// context digest finds it in the registry: `context-<64 hex>`.
pub fn content_tag(context_digest: &str) -> String {
    format!("context-{}", context_digest.trim_start_matches("sha256:"))
}

/// Whether the text is a tag the registry accepts: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut characters = tag.chars();
    let first_ok = characters
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && characters.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Makes any text a valid tag: other characters become `-`, a leading `.` or `-` becomes `_`,
/// at most 128 characters. Empty stays empty (an error later, with the template named).
pub fn sanitise_tag(text: &str) -> String {
    let mut tag: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if tag.starts_with(['.', '-']) {
        tag.replace_range(0..1, "_");
    }
    tag
}

/// Renders each tag template against `values` in which `git.branch`, `git.tag` and
/// `git.ref` are already made safe for tags. Returns the tags, without duplicates, or every
/// problem found.
pub fn render_tags(
    templates: &[String],
    values: &serde_json::Value,
) -> Result<Vec<String>, Vec<String>> {
    let mut safe_values = values.clone();
    if let Some(git) = safe_values
        .get_mut("git")
        .and_then(|git| git.as_object_mut())
    {
        for key in ["branch", "tag", "ref"] {
            if let Some(serde_json::Value::String(text)) = git.get(key) {
                let safe = sanitise_tag(text);
                git.insert(key.to_owned(), serde_json::Value::String(safe));
            }
        }
    }
    let context = expr::Context {
        values: safe_values,
        job_status: expr::JobStatusView {
            any_failed: false,
            any_cancelled: false,
        },
    };
    let mut tags = Vec::new();
    let mut problems = Vec::new();
    if templates.is_empty() {
        problems
            .push("`tags:` is empty; give at least one tag, e.g. `{{ git.short_sha }}`".to_owned());
    }
    for template in templates {
        match expr::render(template, &context) {
            Ok(tag) if is_valid_tag(&tag) => {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            Ok(tag) if tag.is_empty() => problems.push(format!(
                "tag `{template}` renders to an empty tag for this event (is it a push of a tag?); use a template that always has a value, e.g. `{{{{ git.short_sha }}}}`"
            )),
            Ok(tag) => problems.push(format!(
                "tag `{template}` renders to `{tag}`, which is not a valid tag; tags are up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
            )),
            Err(problem) => problems.push(format!("tag `{template}`: {problem}")),
        }
    }
    if problems.is_empty() {
        Ok(tags)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(image: &str, registry: Option<&str>, expect: Result<(&str, &str, &str), &str>) {
        let parsed = ImageName::parse(image, registry);
        match (parsed, expect) {
            (Ok(name), Ok((host, repository, full))) => {
                assert_eq!(
                    (
                        name.registry.as_str(),
                        name.repository.as_str(),
                        name.full.as_str()
                    ),
                    (host, repository, full),
                    "{image}"
                );
            }
            (Err(message), Err(fragment)) => {
                assert!(message.contains(fragment), "{image}: {message}")
            }
            (other, expect) => panic!("{image}: got {other:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn names() {
        check_name(
            "127.0.0.1:5000/trainer",
            None,
            Ok(("127.0.0.1:5000", "trainer", "127.0.0.1:5000/trainer")),
        );
        check_name(
            "trainer",
            Some("127.0.0.1:5000"),
            Ok(("127.0.0.1:5000", "trainer", "127.0.0.1:5000/trainer")),
        );
        check_name(
            "ml/trainer",
            Some("reg.example.com/"),
            Ok((
                "reg.example.com",
                "ml/trainer",
                "reg.example.com/ml/trainer",
            )),
        );
        check_name(
            "reg.example.com/ml/trainer",
            Some("other:1"),
            Ok((
                "reg.example.com",
                "ml/trainer",
                "reg.example.com/ml/trainer",
            )),
        );
        check_name("localhost/x", None, Ok(("localhost", "x", "localhost/x")));
        check_name(
            "busybox",
            None,
            Ok(("docker.io", "library/busybox", "busybox")),
        );
        check_name("acme/app", None, Ok(("docker.io", "acme/app", "acme/app")));
        check_name(
            "127.0.0.1:5000/Trainer",
            None,
            Err("not a valid repository name"),
        );
        check_name("127.0.0.1:5000/trainer:1", None, Err("contains a tag"));
        check_name("trainer@sha256:00", None, Err("contains a digest"));
        check_name("", None, Err("not a valid repository name"));
    }

    #[test]
    fn tags_are_validated_and_sanitised() {
        assert!(is_valid_tag("abc1234"));
        assert!(is_valid_tag("_x.y-z"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert_eq!(sanitise_tag("feature/New Thing"), "feature-New-Thing");
        assert_eq!(sanitise_tag(".hidden"), "_hidden");
        assert_eq!(sanitise_tag(&"b".repeat(200)).len(), 128);
        assert!(content_tag("sha256:abcd").starts_with("context-abcd"));
    }

    fn values() -> serde_json::Value {
        serde_json::json!({
            "git": { "sha": "0123456789abcdef", "short_sha": "0123456", "branch": "feature/x", "tag": "", "ref": "refs/heads/feature/x" },
            "env": { "STAGE": "rc 1" }
        })
    }

    #[test]
    fn tag_templates_render_with_safe_git_values_and_report_every_problem() {
        assert_eq!(
            render_tags(
                &[
                    "{{ git.short_sha }}".into(),
                    "{{ git.branch }}".into(),
                    "${{ git.short_sha }}".into()
                ],
                &values()
            )
            .unwrap(),
            vec!["0123456", "feature-x"]
        );
        let problems = render_tags(
            &[
                "{{ git.tag }}".into(),
                "{{ env.STAGE }}".into(),
                "{{ git.nope }}".into(),
            ],
            &values(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("empty tag"), "{problems:?}");
        assert!(problems[1].contains("`rc 1`"), "{problems:?}");
        assert!(
            problems[2].contains("git.nope") || problems[2].contains("nope"),
            "{problems:?}"
        );
    }
}
