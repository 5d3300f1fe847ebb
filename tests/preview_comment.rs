//! A pull request's release preview as its author reads it in the comment: per environment, the
//! Kubernetes objects that would change, the DAG files added, the model version each alias would
//! move to with its metrics next to the current holder's, and the policy findings over the one
//! input, each deny with its rule and message. The preview's parts are built by the Rust that
//! builds them for a deploy; the comment is rendered from the job outputs the `preview` step writes.

#[path = "support/domains.rs"]
mod domains;

use chrono::{DateTime, Utc};
use sluice::deploy::preview::{DomainPreview, Preview};
use sluice::deploy::{Change, ChangeAction};
use sluice::forge::comment::{CommentInput, JobLine, render};
use sluice::model::{JobRecord, Run, Status};
use sluice::policy::{FixedClock, PolicyContext, PolicySet, load_sources};
use std::path::PathBuf;

fn domain(target: &str, changes: Vec<Change>, facts: serde_json::Value) -> DomainPreview {
    DomainPreview {
        target: target.to_owned(),
        changes,
        facts,
        problem: None,
        transient: false,
    }
}

/// Production's preview of a change that breaks a rule in every domain but Terraform.
fn broken_preview() -> Preview {
    Preview {
        environment: "production".to_owned(),
        domains: vec![
            domain("mlflow", Vec::new(), domains::mlflow(0.62)),
            domain(
                "kubernetes",
                vec![Change {
                    address: "Deployment/ml-prod/serving-api".to_owned(),
                    action: ChangeAction::Update,
                    detail: Some("spec.template.spec.containers[0].image".to_owned()),
                }],
                domains::kubernetes("registry.example.com/serving-api:latest"),
            ),
            domain(
                "airflow",
                vec![Change {
                    address: "/srv/airflow/production/dags/batch_score.py".to_owned(),
                    action: ChangeAction::Update,
                    detail: Some("sha256 0a1b2c3d4e5f → 9f8e7d6c5b4a".to_owned()),
                }],
                domains::airflow(true).0,
            ),
        ],
    }
}

fn comment_of(preview: &Preview) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let policies = PolicySet::compile(&load_sources(&root.join("policies")).unwrap()).unwrap();
    let time: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-01-02T10:00:00Z")
        .unwrap()
        .into();
    let mut context = PolicyContext::at(&FixedClock(time));
    context.environment = Some("production".to_owned());
    context.event = Some("pull_request".to_owned());
    let evaluation = sluice::deploy::preview::evaluate(&policies, preview, &context);
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    let outputs = sluice::steps::preview::outputs(preview, &evaluation.findings, &[]);
    let run: Run = serde_json::from_value(serde_json::json!({
        "id": 7, "repository": "acme/platform", "commit": "a".repeat(40), "ref": "refs/pull/12/head",
        "event": "pull_request", "pipeline": "platform", "status": "failed",
        "created_at": "2025-01-02T10:00:00Z",
        "jobs": [{"name": "preview-production", "status": "failed", "needs": [], "steps": [],
                  "outputs": outputs}],
    }))
    .unwrap();
    let (sections, policies) = sluice::scheduler::contributions::contributions_of(&run);
    let job: &JobRecord = &run.jobs[0];
    render(&CommentInput {
        pipeline: "platform".to_owned(),
        commit: run.commit.clone(),
        at: time,
        status: Status::Failed,
        run_id: Some(7),
        run_url: None,
        jobs: vec![JobLine {
            name: job.name.clone(),
            status: job.status,
            summary: None,
        }],
        sections,
        policies,
    })
    .join("\n")
}

#[test]
fn every_domains_change_and_each_deny_is_in_the_comment() {
    // Markdown escapes are the renderer's business; read the comment as it displays.
    let comment = comment_of(&broken_preview()).replace('\\', "");
    for heading in ["Kubernetes manifests", "Airflow DAGs", "Models"] {
        assert!(comment.contains(heading), "{heading} missing:\n{comment}");
    }
    assert!(
        comment
            .contains("~ Deployment/ml-prod/serving-api  (spec.template.spec.containers[0].image)"),
        "{comment}"
    );
    assert!(
        comment.contains("~ /srv/airflow/production/dags/batch_score.py"),
        "{comment}"
    );
    // The model table: the alias moves v6 → v7, the new version's metrics next to the holder's.
    assert!(
        comment.contains("| churn-classifier | production | v6 | v7 |"),
        "{comment}"
    );
    assert!(comment.contains("accuracy 0.62"), "{comment}");
    assert!(comment.contains("accuracy 0.79"), "{comment}");
    for (rule, message) in [
        (
            "kubernetes.images.deny",
            "Deployment/serving-api in production",
        ),
        ("airflow.secrets.deny", "contains an AWS access key id"),
        (
            "mlflow.models.deny",
            "model churn-classifier version 7 has accuracy 0.62, below the floor 0.70",
        ),
    ] {
        let line = comment
            .lines()
            .find(|line| line.contains(rule))
            .unwrap_or_else(|| panic!("{rule} missing:\n{comment}"));
        assert!(line.contains(message), "{line}");
    }
}

#[test]
fn a_compliant_preview_shows_the_policies_passed() {
    let mut preview = broken_preview();
    preview.domains[0].facts = domains::mlflow(0.81);
    preview.domains[1].facts = domains::kubernetes("registry.example.com/serving-api@sha256:9a1c");
    preview.domains[2].facts = domains::airflow(false).0;
    let comment = comment_of(&preview);
    assert!(!comment.contains(".deny"), "{comment}");
    assert!(comment.contains("all domains (production)"), "{comment}");
}

/// A factory that fails the test if anything asks it for targets.
struct NoTargets;

impl sluice::deploy::reconcile::TargetFactory for NoTargets {
    fn targets(
        &self,
        _repository: &str,
        _environment: &sluice::config::environment::Environment,
    ) -> Result<Vec<std::sync::Arc<dyn sluice::deploy::Target>>, sluice::deploy::TargetError> {
        panic!("a fork's preview asked for the deploy targets");
    }
}

#[test]
fn a_forks_pull_request_gets_no_preview_and_reaches_no_target() {
    let data = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        sluice::store::SqliteStore::open(&data.path().join("sluice.db")).unwrap(),
    );
    let (log, _lines) = tokio::sync::mpsc::unbounded_channel();
    let context = sluice::steps::StepContext {
        workspace: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        scratch: data.path().join("scratch"),
        env: Default::default(),
        template_values: serde_json::json!({}),
        event: sluice::model::Event {
            kind: sluice::model::EventKind::PullRequest,
            repository: "acme/platform".to_owned(),
            git_ref: "refs/pull/7/head".to_owned(),
            commit: "a".repeat(40),
            before: None,
            base_branch: Some("main".to_owned()),
            action: Some("opened".to_owned()),
            pull_request: Some(7),
            actor: Some("someone-else".to_owned()),
            changed_paths: None,
        },
        trust: sluice::model::TrustLevel::Untrusted,
        authority_tree: None,
        isolation: sluice::steps::Isolation::default(),
        run_id: 1,
        job: "preview-production".to_owned(),
        pipeline: "platform".to_owned(),
        data_dir: data.path().to_owned(),
        store,
        targets: Some(std::sync::Arc::new(NoTargets)),
        log,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let step = sluice::config::workflow::PreviewStep {
        environment: "production".to_owned(),
    };
    let outcome = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sluice::steps::preview::execute(&step, &context));
    let sluice::steps::StepOutcome::NotStarted(message) = &outcome else {
        panic!("a fork's preview should not start: {outcome:?}");
    };
    assert!(message.contains("a pull request from a fork"), "{message}");
}
