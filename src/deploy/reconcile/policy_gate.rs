//! The policy gate: before a release enters an environment, every configured target says what it
//! would change (`deploy::preview`), and the default branch's policies (at the release's
//! `config_commit`) judge that one input. A deny holds the release, recorded with the rule and
//! its message; a target that cannot be reached holds it too (it could not be checked), and the
//! next pass asks again. Asked only once the other gates passed, since a preview costs calls to
//! every target's system.

use super::Reconciler;
use crate::config::environment::Environment;
use crate::deploy::Release;
use crate::deploy::gates::GateDecision;
use crate::deploy::preview::{self, Preview};
use crate::policy::{PolicyContext, PolicySet, load_sources};

impl Reconciler {
    pub(super) async fn policy_decision(
        &self,
        environment: &Environment,
        release: &Release,
        previous: Option<Release>,
        approvals: &[String],
    ) -> GateDecision {
        let decision = |passed: bool, reason: String| GateDecision {
            gate: "policy",
            passed,
            reason,
        };
        let directory = match self.trees.policies(release).await {
            Ok(Some(directory)) => directory,
            Ok(None) => return decision(true, "no policies/ on the default branch".to_owned()),
            Err(problem) => {
                return decision(false, format!("cannot read the policies: {problem}"));
            }
        };
        let policies = match load_sources(&directory)
            .and_then(|sources| PolicySet::compile(&sources))
        {
            Ok(policies) => policies,
            Err(errors) => {
                return decision(
                    false,
                    format!(
                        "the default branch's policies do not load: {}; fix them in a pull request",
                        errors
                            .0
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                );
            }
        };
        let preview = match self.preview(environment, release, previous).await {
            Ok(preview) => preview,
            Err(problem) => {
                return decision(false, format!("cannot preview the release: {problem}"));
            }
        };
        let unreachable = preview.transient_problems();
        if !unreachable.is_empty() {
            return decision(
                false,
                format!(
                    "could not check: {}; asked again on the next pass",
                    unreachable.join("; ")
                ),
            );
        }
        let mut context = PolicyContext::at(self.clock.as_ref());
        context.environment = Some(environment.name.clone());
        context.event = Some("promotion".to_owned());
        context.author = release.author.clone();
        context.commit = Some(release.commit.clone());
        context.release = Some(release.id.clone());
        context.approvals = approvals
            .iter()
            .map(|approval| crate::model::access::login_of(approval).to_owned())
            .collect();
        let evaluation = preview::evaluate(&policies, &preview, &context);
        let blocking = preview::blocking_lines(&evaluation);
        if !blocking.is_empty() {
            return decision(false, blocking.join("; "));
        }
        let domains: Vec<&str> = preview
            .domains
            .iter()
            .map(|domain| domain.target.as_str())
            .collect();
        let warnings = evaluation
            .findings
            .iter()
            .filter(|finding| finding.severity == crate::policy::Severity::Warn)
            .count();
        decision(
            true,
            format!(
                "{} rule(s) passed over {}{}",
                evaluation.rules_evaluated,
                if domains.is_empty() {
                    "no targets".to_owned()
                } else {
                    domains.join(", ")
                },
                if warnings > 0 {
                    format!(", {warnings} warning(s)")
                } else {
                    String::new()
                }
            ),
        )
    }

    async fn preview(
        &self,
        environment: &Environment,
        release: &Release,
        previous: Option<Release>,
    ) -> Result<Preview, String> {
        let (targets, context) = self
            .targets_and_context(environment, release, previous)
            .await?;
        Ok(preview::preview(&targets, &context).await)
    }
}

impl Reconciler {
    /// The release `environment` runs now, if any.
    pub async fn running_release(
        &self,
        environment: &str,
    ) -> Result<Option<Release>, crate::store::StoreError> {
        let states = self.states().await?;
        match states.iter().find(|state| state.environment == environment) {
            Some(state) => self.release(&state.release).await,
            None => Ok(None),
        }
    }
}
