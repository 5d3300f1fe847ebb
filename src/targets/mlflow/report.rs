//! What people and policies read about model promotion: the policy input facts and the PR
//! comment section for the models moving in an environment, and the alias history as text.
//! Pure: formats decisions and recorded moves, reads nothing.

use super::select::ModelDecision;
use crate::store::AliasMove;
use serde_json::{Value, json};

/// `input.mlflow` for the policies: the models moving in the environment with metrics and tags.
pub fn policy_facts(environment: &str, tracking_uri: &str, decisions: &[ModelDecision]) -> Value {
    let models: Vec<Value> = decisions
        .iter()
        .map(|decision| {
            json!({
                "model": decision.model,
                "alias": decision.alias,
                "mode": decision.mode,
                "pin": decision.pin,
                "from": decision.from,
                "to": decision.to,
                "moves": decision.moves(),
                "metrics": decision.metrics,
                "current_metrics": decision.current_metrics,
                "tags": decision.tags,
                "restart": decision.restart,
            })
        })
        .collect();
    json!({
        "environment": environment,
        "tracking_uri": tracking_uri,
        "models": models,
    })
}

/// The PR comment's section for one environment's models, as Markdown.
pub fn comment_section(environment: &str, decisions: &[ModelDecision]) -> String {
    let mut text = format!("#### Models: {environment}\n\n");
    if decisions.is_empty() {
        text.push_str("No models are pinned here.\n");
        return text;
    }
    text.push_str(
        "| model | alias | version | metrics | tags |\n| --- | --- | --- | --- | --- |\n",
    );
    for decision in decisions {
        let version = if decision.moves() {
            format!(
                "{} → **{}**",
                decision.from.as_deref().unwrap_or("none"),
                decision.to
            )
        } else {
            format!("{} (unchanged)", decision.to)
        };
        let metrics: Vec<String> = decision
            .metrics
            .iter()
            .map(|(name, value)| format!("{name} {value:.4}"))
            .collect();
        let tags: Vec<String> = decision
            .tags
            .iter()
            .filter(|(key, _)| !key.starts_with("sluice."))
            .map(|(key, value)| format!("{key}={}", escape_cell(value)))
            .collect();
        text.push_str(&format!(
            "| `{}` | `{}` | {version} | {} | {} |\n",
            decision.model,
            decision.alias,
            escape_cell(&metrics.join(", ")),
            escape_cell(&tags.join(", "))
        ));
    }
    text
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `sluice history ENV --models`: one line per move, newest first.
pub fn render_history(environment: &str, moves: &[AliasMove]) -> String {
    if moves.is_empty() {
        return format!("no model alias moves recorded for `{environment}`\n");
    }
    let mut text = format!(
        "{:<20}  {:<24}  {:<14}  {:>6}  {:>6}  {:<10}  {}\n",
        "when (UTC)", "model", "alias", "from", "to", "reason", "release"
    );
    for alias_move in moves {
        let recorded = &alias_move.recorded;
        let alias = if recorded.mode == "stage" {
            format!("{} (stage)", recorded.alias)
        } else {
            recorded.alias.clone()
        };
        text.push_str(&format!(
            "{:<20}  {:<24}  {:<14}  {:>6}  {:>6}  {:<10}  {}\n",
            alias_move.moved_at.format("%Y-%m-%d %H:%M:%S"),
            recorded.model,
            alias,
            recorded.from_version.as_deref().unwrap_or("-"),
            recorded.to_version.as_deref().unwrap_or("-"),
            recorded.reason,
            recorded.release_id
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewAliasMove;
    use crate::targets::mlflow::config::{PromotionMode, VersionPin};

    fn decision(from: Option<&str>, to: &str) -> ModelDecision {
        ModelDecision {
            model: "churn-classifier".to_string(),
            alias: "staging".to_string(),
            mode: PromotionMode::Alias,
            pin: VersionPin::Exact(to.parse().unwrap()),
            from: from.map(str::to_string),
            to: to.to_string(),
            metrics: [("accuracy".to_string(), 0.81)].into_iter().collect(),
            current_metrics: Default::default(),
            tags: [
                ("git_sha".to_string(), "abc".to_string()),
                ("sluice.release.dev".to_string(), "r1".to_string()),
            ]
            .into_iter()
            .collect(),
            restart: vec!["deployment/serving-api".to_string()],
            keep_previous_as: None,
        }
    }

    #[test]
    fn the_comment_shows_the_move_with_metrics_and_the_users_tags_only() {
        let section = comment_section("staging", &[decision(Some("3"), "4")]);
        assert!(section.contains("3 → **4**"), "{section}");
        assert!(section.contains("accuracy 0.8100"), "{section}");
        assert!(section.contains("git_sha=abc"), "{section}");
        assert!(!section.contains("sluice.release"), "{section}");
        let unchanged = comment_section("staging", &[decision(Some("4"), "4")]);
        assert!(unchanged.contains("4 (unchanged)"), "{unchanged}");
    }

    #[test]
    fn policy_facts_carry_versions_metrics_and_whether_the_alias_moves() {
        let facts = policy_facts("dev", "http://mlflow", &[decision(None, "2")]);
        assert_eq!(facts["environment"], "dev");
        assert_eq!(facts["models"][0]["to"], "2");
        assert_eq!(facts["models"][0]["from"], Value::Null);
        assert_eq!(facts["models"][0]["moves"], true);
        assert_eq!(facts["models"][0]["metrics"]["accuracy"], 0.81);
        assert_eq!(facts["models"][0]["pin"], 2);
    }

    #[test]
    fn history_lines_show_from_to_reason_and_release() {
        let moved_at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let text = render_history(
            "staging",
            &[AliasMove {
                id: 1,
                recorded: NewAliasMove {
                    environment: "staging".to_string(),
                    model: "churn-classifier".to_string(),
                    alias: "staging".to_string(),
                    mode: "alias".to_string(),
                    from_version: Some("3".to_string()),
                    to_version: Some("4".to_string()),
                    release_id: "r7-abcdef123456".to_string(),
                    reason: "deploy".to_string(),
                },
                moved_at,
            }],
        );
        let line = text.lines().nth(1).unwrap();
        for fragment in [
            "2026-01-02 03:04:05",
            "churn-classifier",
            "3",
            "4",
            "deploy",
            "r7-abcdef123456",
        ] {
            assert!(line.contains(fragment), "{line}");
        }
        assert!(render_history("dev", &[]).contains("no model alias moves"));
    }
}
