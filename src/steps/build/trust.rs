//! What a build may push at each trust level. A trusted run (a push to a deploy branch) pushes
//! the tags the step configures plus the content tag. A member run (a push to another branch, a
//! pull request from the same repository) pushes one tag of its own and nothing else: `pr-<number>`
//! for a pull request, `branch-<branch made a valid tag>` for a push to a branch, `sha-<12 hex>`
//! for anything else (a tag pushed). Those prefixes are the member namespace; a configured tag
//! never moves for a member run, so `latest` or a release tag always names an image a trusted run
//! pushed. An untrusted run (a pull request from a fork) builds nothing. Pure.

use super::reference::sanitise_tag;
use crate::model::{Event, TrustLevel};

/// The one tag a member run's image gets: `pr-12`, `branch-feature-x`, or `sha-0123456789ab`.
pub fn member_tag(event: &Event) -> String {
    let tag = if let Some(number) = event.pull_request {
        format!("pr-{number}")
    } else if let Some(branch) = event.branch() {
        format!("branch-{}", sanitise_tag(branch))
    } else {
        format!("sha-{}", crate::model::short_commit(&event.commit))
    };
    tag.chars().take(128).collect()
}

/// Whether a run at this level pushes the `context-<digest>` tag that finds the image by its
/// content in the registry.
pub fn pushes_content_tag(trust: TrustLevel) -> bool {
    trust == TrustLevel::Trusted
}

/// Why an untrusted run's build step does not start, and what to do instead.
pub fn untrusted_refusal(event: &Event) -> String {
    let pull_request = event
        .pull_request
        .map(|number| format!("pull request #{number}"))
        .unwrap_or_else(|| "this pull request".to_owned());
    format!(
        "build step: a fork's pull request builds no images ({pull_request} of {} is untrusted); \
         a maintainer can push its commits to a branch of {} to build them as a member run, or \
         merge it to build on the deploy branch",
        event.repository, event.repository
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    fn event(git_ref: &str, pull_request: Option<u64>) -> Event {
        Event {
            kind: if pull_request.is_some() {
                EventKind::PullRequest
            } else {
                EventKind::Push
            },
            repository: "acme/ml-platform".to_owned(),
            git_ref: git_ref.to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            before: None,
            base_branch: None,
            action: None,
            pull_request,
            actor: None,
            changed_paths: None,
        }
    }

    #[test]
    fn a_member_run_gets_one_tag_in_its_own_namespace() {
        assert_eq!(
            member_tag(&event("refs/heads/feature/new", Some(42))),
            "pr-42"
        );
        assert_eq!(
            member_tag(&event("refs/heads/feature/New Thing", None)),
            "branch-feature-New-Thing"
        );
        assert_eq!(
            member_tag(&event("refs/tags/v1.2.0", None)),
            "sha-0123456789ab"
        );
        let long_branch = format!("refs/heads/{}", "b".repeat(200));
        assert_eq!(member_tag(&event(&long_branch, None)).len(), 128);
    }

    #[test]
    fn only_trusted_runs_push_the_content_tag() {
        assert!(pushes_content_tag(TrustLevel::Trusted));
        assert!(!pushes_content_tag(TrustLevel::Member));
        assert!(!pushes_content_tag(TrustLevel::Untrusted));
    }

    #[test]
    fn the_refusal_names_the_pull_request_and_what_to_do() {
        let message = untrusted_refusal(&event("refs/heads/patch-1", Some(7)));
        assert!(message.contains("a fork's pull request builds no images"));
        assert!(message.contains("pull request #7 of acme/ml-platform"));
        assert!(message.contains("push its commits to a branch of acme/ml-platform"));
    }
}
