//! Where authority comes from. Which branches deploy, each environment's gates, approvers, targets
//! and apply mode, and the policies that judge plans, are read at the head of the repository's
//! default branch (the protected branch a change must be reviewed into), never from the commit
//! under test: a branch or a pull request cannot grant itself a deployment or weaken the policy
//! that checks it. This file reads that head from the mirror; callers decide what to do with it.

use crate::config::environment::Environment;
use crate::git::Mirror;
use crate::model::{EventKind, TrustLevel};

/// The configuration that decides, read at one commit of the default branch.
#[derive(Clone, Debug)]
pub struct Authority {
    /// The default branch's name (`main`).
    pub branch: String,
    /// Its head when read: the commit the environments and policies came from.
    pub commit: String,
    pub environments: Vec<Environment>,
}

impl Authority {
    /// A push is a merge (trusted) only when the default branch's environments deploy from the
    /// branch pushed to.
    pub fn classify_push(&self, branch: Option<&str>) -> EventKind {
        crate::planner::classify_push(&self.environments, branch)
    }
}

/// The default branch's head and its `environments/`; `None` in a mirror without branches.
/// Blocking (git).
pub fn read_authority(mirror: &Mirror) -> anyhow::Result<Option<Authority>> {
    let Some(branch) = mirror.default_branch()? else {
        return Ok(None);
    };
    let commit = mirror.resolve(&format!("refs/heads/{branch}"))?;
    let environments = super::promotion::read_environments(mirror, &commit)?;
    Ok(Some(Authority {
        branch,
        commit,
        environments,
    }))
}

/// The trust level of an event, from facts sluice verified: where a pull request's head lives,
/// and whether a push went to a branch the default branch's environments deploy from.
pub fn trust_level(kind: EventKind, from_fork: bool) -> TrustLevel {
    match (kind, from_fork) {
        (_, true) => TrustLevel::Untrusted,
        (EventKind::Merge, false) => TrustLevel::Trusted,
        (EventKind::Push | EventKind::PullRequest, false) => TrustLevel::Member,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_merge_is_trusted_and_a_fork_never_is() {
        assert_eq!(trust_level(EventKind::Merge, false), TrustLevel::Trusted);
        assert_eq!(trust_level(EventKind::Push, false), TrustLevel::Member);
        assert_eq!(
            trust_level(EventKind::PullRequest, false),
            TrustLevel::Member
        );
        assert_eq!(
            trust_level(EventKind::PullRequest, true),
            TrustLevel::Untrusted
        );
        assert!(TrustLevel::Untrusted < TrustLevel::Member);
        assert!(TrustLevel::Member < TrustLevel::Trusted);
    }
}
