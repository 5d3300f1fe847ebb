//! Terraform drift with the real `terraform` on the example's `terraform_data` resources: after a
//! deployment nothing differs; someone applies a different input against the same state by hand;
//! the check names each changed attribute with the configured and the actual value and keeps the
//! plan that puts it back for review, sealed; promotion never applies it, an admin does by naming
//! its sha256, and the environment is clean again.

mod support;

use sluice::deploy::{DeployContext, Release, Target, TargetError};
use sluice::policy::{PolicyContext, SystemClock};
use sluice::store::{SqliteStore, Store};
use sluice::terraform::{PlanKey, PlanOrigin, PlanOutcome, TerraformJob, plan_and_store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::{copy_tree, repository_root};

fn key() -> PlanKey {
    PlanKey::from_bytes([7; 32])
}

fn environment() -> sluice::config::environment::Environment {
    serde_json::from_value(serde_json::json!({
        "name": "dev",
        "terraform": {"dir": "platform/infra/envs/dev", "var_files": ["terraform.tfvars"]},
    }))
    .unwrap()
}

fn state_file(directory: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(directory).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = state_file(&path) {
                return Some(found);
            }
        } else if path
            .file_name()
            .is_some_and(|name| name == "terraform.tfstate")
        {
            return Some(path);
        }
    }
    None
}

/// `terraform apply` by hand, against the state sluice keeps, with another input.
fn apply_by_hand(checkout: &Path, state: &Path, variable: &str) {
    let dir = checkout.join("platform/infra/envs/dev");
    let data = tempfile::tempdir().unwrap();
    let terraform = |arguments: &[&str]| {
        let output = Command::new("terraform")
            .arg(format!("-chdir={}", dir.display()))
            .args(arguments)
            .env("TF_DATA_DIR", data.path())
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .expect("terraform runs");
        assert!(
            output.status.success(),
            "terraform {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    terraform(&[
        "init",
        "-input=false",
        &format!("-backend-config=path={}", state.display()),
    ]);
    terraform(&[
        "apply",
        "-input=false",
        "-auto-approve",
        "-var-file=terraform.tfvars",
        "-var",
        variable,
    ]);
}

#[tokio::test]
async fn an_input_applied_by_hand_is_reported_kept_for_review_and_applied_only_when_named() {
    let checkout = tempfile::tempdir().unwrap();
    copy_tree(
        &repository_root().join("platform/infra"),
        &checkout.path().join("platform/infra"),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&data_dir.path().join("sluice.db")).unwrap());
    let environment = environment();
    let settings = sluice::terraform::TerraformSettings::from_environment(&environment)
        .unwrap()
        .unwrap();
    let job = TerraformJob {
        settings: settings.clone(),
        repository: "example/platform".into(),
        checkout: checkout.path().to_owned(),
        data_dir: data_dir.path().to_owned(),
        env: Default::default(),
        log: None,
        cancel: Default::default(),
        container: None,
    };
    let no_policies = tempfile::tempdir().unwrap();
    let planned = plan_and_store(
        &job,
        &*store,
        &key(),
        &PlanOrigin {
            commit: "head-1".into(),
            tree: None,
            base_commit: Some("base-0".into()),
            pull_request: Some(1),
            holder_label: String::new(),
        },
        no_policies.path(),
        &PolicyContext::at(&SystemClock),
    )
    .await
    .unwrap();
    let PlanOutcome::Planned { change, .. } = planned else {
        panic!("planned");
    };
    let target = sluice::targets::terraform::TerraformTarget::new(
        settings,
        "example/platform",
        data_dir.path(),
        store.clone() as Arc<dyn Store>,
        key(),
    );
    let context = DeployContext {
        environment,
        release: Release {
            id: "r1-merge".into(),
            sequence: 1,
            plans: [("dev".to_owned(), change.sha256.clone())].into(),
            ..Release::unrecorded("example/platform", "merge-of-head-1", "main", None)
        },
        tree: checkout.path().to_owned(),
        previous: None,
        applied: Default::default(),
    };
    target.apply(&context).await.unwrap();
    let clean = target.drift(&context).await.unwrap();
    assert!(clean.drifts.is_empty(), "{:?}", clean.drifts);
    assert_eq!(clean.review, None);

    let state = state_file(&data_dir.path().join("terraform")).expect("sluice keeps a state");
    apply_by_hand(checkout.path(), &state, "mlflow_replicas=3");

    let found = target.drift(&context).await.unwrap();
    let objects: Vec<(&str, &str, &str)> = found
        .drifts
        .iter()
        .map(|drift| {
            (
                drift.object.as_str(),
                drift.expected.as_str(),
                drift.actual.as_str(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        [(
            "module.mlflow.terraform_data.tracking_server[0]: input.replicas",
            "1",
            "3"
        )]
    );
    let review = found.review.clone().expect("a plan is kept for review");
    let sha256 = review["plan"].as_str().unwrap().to_owned();
    assert_eq!(review["counts"], "+0 ~1 -0 ±0");
    assert!(
        review["who_may_apply"]
            .as_str()
            .unwrap()
            .contains(&format!("sluice drift dev --apply-plan {sha256}")),
        "{review}"
    );
    // Kept sealed: the plan's bytes are not on disk in the clear.
    let kept = std::fs::read(
        data_dir
            .path()
            .join("terraform/drift/example__platform/dev")
            .join(format!("{sha256}.plan")),
    )
    .unwrap();
    assert!(!kept.windows(5).any(|window| window == b"tfplan"));

    // Without the plan named, a heal by hand refuses; with the plan, it applies it.
    let mut unnamed = found.clone();
    unnamed.review = None;
    let refused = target.heal(&context, &unnamed).await.unwrap_err();
    assert!(matches!(refused, TargetError::Rejected(_)), "{refused}");
    let applied = target.heal(&context, &found).await.unwrap();
    assert_eq!(
        applied.summary,
        format!("applied the reviewed drift plan {}", &sha256[..12])
    );
    let after = target.drift(&context).await.unwrap();
    assert!(after.drifts.is_empty(), "{:?}", after.drifts);
}
