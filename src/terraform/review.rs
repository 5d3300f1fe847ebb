//! Which stored plan a merge may apply, decided purely from the plans and the merged commit.
//!
//! The merge commit differs from the commit the pull request planned, so a plan is matched by
//! (1) the merged commit itself (fast-forward and rebase merges), (2) the pull request's head,
//! which is the merge commit's second parent, or (3) tree equality (squash merges: the squashed
//! commit has the tree the head had when the base did not move). A matched plan is applied only
//! when what was merged is what was planned: the same commit, the same tree, or a merge onto the
//! very base commit the plan was made against. Otherwise the base moved and a re-plan is needed.
//! Knows nothing of git, Terraform or the store's SQL.

use crate::store::TerraformPlanRecord;

/// The facts about a merged commit the decision needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedCommit {
    pub commit: String,
    /// In git order: the base branch's previous tip first, then the merged head.
    pub parents: Vec<String>,
    pub tree: Option<String>,
}

/// Why no stored plan may be applied. Each message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no reviewed plan for commit {commit} in environment {environment}; open a pull request so sluice plans it, or plan it with the terraform step"
    )]
    NoPlan { commit: String, environment: String },
    #[error(
        "the base branch moved since the plan: plan {sha256} was made against {planned_base} but the merge landed on {merged_onto}; re-plan (push to the pull request or update it from the base branch) and review again"
    )]
    BaseMoved {
        sha256: String,
        planned_base: String,
        merged_onto: String,
    },
    #[error(
        "plan {sha256} for commit {commit} was superseded by a newer plan for commit {newer_commit}; apply the newer plan's commit or re-plan"
    )]
    Superseded {
        sha256: String,
        commit: String,
        newer_commit: String,
    },
}

/// What the merge should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    Apply(&'a TerraformPlanRecord),
    /// The matched plan was applied already: nothing to do (applies are idempotent).
    AlreadyApplied(&'a TerraformPlanRecord),
    Refuse(Refusal),
}

/// Picks the plan for `merged` from `plans` (one target and workspace, newest first).
pub fn decide<'a>(
    plans: &'a [TerraformPlanRecord],
    merged: &MergedCommit,
    environment: &str,
) -> Decision<'a> {
    let merged_head = merged.parents.get(1);
    let matches = |plan: &&TerraformPlanRecord| {
        plan.commit == merged.commit
            || Some(&plan.commit) == merged_head
            || (plan.tree.is_some() && plan.tree == merged.tree)
    };
    let Some(plan) = plans.iter().find(matches) else {
        return Decision::Refuse(Refusal::NoPlan {
            commit: merged.commit.clone(),
            environment: environment.to_owned(),
        });
    };
    if plan.apply_status.as_deref() == Some("applied") {
        return Decision::AlreadyApplied(plan);
    }
    if let Some(newer_id) = plan.superseded_by {
        let newer_commit = plans
            .iter()
            .find(|candidate| candidate.id == newer_id)
            .map(|newer| newer.commit.clone())
            .unwrap_or_else(|| format!("(plan {newer_id})"));
        return Decision::Refuse(Refusal::Superseded {
            sha256: plan.sha256.clone(),
            commit: plan.commit.clone(),
            newer_commit,
        });
    }
    let same_commit = plan.commit == merged.commit;
    let same_tree = plan.tree.is_some() && plan.tree == merged.tree;
    let merged_onto = merged.parents.first();
    let onto_planned_base = plan.base_commit.is_some() && plan.base_commit.as_ref() == merged_onto;
    if same_commit || same_tree || onto_planned_base {
        return Decision::Apply(plan);
    }
    Decision::Refuse(Refusal::BaseMoved {
        sha256: plan.sha256.clone(),
        planned_base: plan
            .base_commit
            .clone()
            .unwrap_or_else(|| "an unknown base".into()),
        merged_onto: merged_onto.cloned().unwrap_or_else(|| "no parent".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TerraformTarget;

    fn plan(id: i64, commit: &str, tree: &str, base: &str) -> TerraformPlanRecord {
        TerraformPlanRecord {
            id,
            target: TerraformTarget {
                repository: "o/r".into(),
                environment: "dev".into(),
                dir: "infra".into(),
            },
            workspace: "default".into(),
            sha256: format!("sha-{id}"),
            commit: commit.into(),
            tree: Some(tree.into()),
            base_commit: Some(base.into()),
            pull_request: Some(7),
            created_at: chrono::Utc::now(),
            summary: String::new(),
            counts: String::new(),
            sealed_plan: Vec::new(),
            json_sha256: String::new(),
            sealed_json: Vec::new(),
            superseded_by: None,
            applied_at: None,
            apply_status: None,
            apply_outputs: None,
        }
    }

    fn merged(commit: &str, parents: &[&str], tree: &str) -> MergedCommit {
        MergedCommit {
            commit: commit.into(),
            parents: parents.iter().map(|parent| parent.to_string()).collect(),
            tree: Some(tree.into()),
        }
    }

    fn check(plans: &[TerraformPlanRecord], merge: MergedCommit, expect: &str) {
        let outcome = match decide(plans, &merge, "dev") {
            Decision::Apply(plan) => format!("apply {}", plan.sha256),
            Decision::AlreadyApplied(plan) => format!("already {}", plan.sha256),
            Decision::Refuse(Refusal::NoPlan { .. }) => "no plan".into(),
            Decision::Refuse(Refusal::BaseMoved { .. }) => "base moved".into(),
            Decision::Refuse(Refusal::Superseded { .. }) => "superseded".into(),
        };
        assert_eq!(outcome, expect);
    }

    #[test]
    fn merges_find_the_reviewed_plan_or_say_why_not() {
        let reviewed = [plan(1, "head", "tree-h", "base")];
        check(
            &reviewed,
            merged("m", &["base", "head"], "tree-h"),
            "apply sha-1",
        );
        check(
            &reviewed,
            merged("m", &["base", "head"], "tree-m"),
            "apply sha-1",
        );
        check(
            &reviewed,
            merged("m", &["moved", "head"], "tree-m"),
            "base moved",
        );
        check(
            &reviewed,
            merged("head", &["before"], "tree-h"),
            "apply sha-1",
        );
        check(
            &reviewed,
            merged("squash", &["base"], "tree-h"),
            "apply sha-1",
        );
        check(&reviewed, merged("squash", &["moved"], "tree-s"), "no plan");
        check(
            &reviewed,
            merged("m", &["base", "other"], "tree-x"),
            "no plan",
        );
        check(&[], merged("m", &["base", "head"], "tree-h"), "no plan");

        let mut older = plan(1, "head", "tree-h", "base");
        older.superseded_by = Some(2);
        let newer = plan(2, "head2", "tree-h2", "base");
        check(
            &[newer.clone(), older.clone()],
            merged("m", &["base", "head"], "tree-h"),
            "superseded",
        );
        check(
            &[newer, older],
            merged("m", &["base", "head2"], "tree-h2"),
            "apply sha-2",
        );

        let mut applied = plan(1, "head", "tree-h", "base");
        applied.apply_status = Some("applied".into());
        check(
            &[applied],
            merged("m", &["base", "head"], "tree-h"),
            "already sha-1",
        );
    }
}
