//! Terraform as a user meets it, with the real `terraform` on the example platform's
//! `terraform_data` resources (no provider download): a pull request's plan is stored encrypted
//! (no plaintext on disk) and applied exactly after the merge; a moved base, a superseded plan and
//! tampered ciphertext are refused with their reason; locks are contended as results, released
//! when the pull request closes and kept across restarts; a missing key refuses to start;
//! `sluice plan` prints the summary and exits 1 on a deny.

mod support;

use sluice::deploy::{DeployContext, Health, Release, Target, TargetError};
use sluice::policy::{PolicyContext, SystemClock};
use sluice::store::{
    LockHolder, LockOutcome, LockRequest, NewTerraformPlan, PlanInsert, SqliteStore, Store,
    TerraformStore, TerraformTarget,
};
use sluice::terraform::{
    ApplyMode, ApplyOutcome, MergedCommit, PlanKey, PlanOrigin, PlanOutcome, SealError,
    TerraformJob, apply_after_merge, locks, plan_and_store,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::{copy_tree, repository_root, sluice_command};

/// A checkout of the example's environments and Terraform, a data dir with a store, and a key.
struct Bench {
    checkout: tempfile::TempDir,
    data_dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    key: PlanKey,
    empty_policies: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let checkout = tempfile::tempdir().unwrap();
        copy_tree(
            &repository_root().join("platform/infra"),
            &checkout.path().join("platform/infra"),
        );
        copy_tree(
            &repository_root().join("environments"),
            &checkout.path().join("environments"),
        );
        let data_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&data_dir.path().join("sluice.db")).unwrap());
        Bench {
            checkout,
            data_dir,
            store,
            key: PlanKey::from_bytes(rand_key()),
            empty_policies: tempfile::tempdir().unwrap(),
        }
    }

    fn job(&self, apply: ApplyMode) -> TerraformJob {
        let mut settings =
            sluice::steps::terraform::load_settings(self.checkout.path(), "dev").unwrap();
        settings.apply = apply;
        TerraformJob {
            settings,
            repository: "example/platform".into(),
            checkout: self.checkout.path().to_owned(),
            data_dir: self.data_dir.path().to_owned(),
            env: Default::default(),
            log: None,
            cancel: Default::default(),
            container: None,
        }
    }

    async fn plan(&self, pull_request: u64, commit: &str, base: &str) -> PlanOutcome {
        plan_and_store(
            &self.job(ApplyMode::ReviewedPlanOnly),
            &*self.store,
            &self.key,
            &origin(pull_request, commit, base),
            self.empty_policies.path(),
            &context(),
        )
        .await
        .expect("terraform plans the example")
    }

    async fn merge(&self, apply: ApplyMode, merged: MergedCommit) -> ApplyOutcome {
        apply_after_merge(
            &self.job(apply),
            &*self.store,
            &self.key,
            &merged,
            self.empty_policies.path(),
            &context(),
        )
        .await
        .expect("the apply runs")
    }
}

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = (index as u8).wrapping_mul(37).wrapping_add(11);
    }
    key
}

fn origin(pull_request: u64, commit: &str, base: &str) -> PlanOrigin {
    PlanOrigin {
        commit: commit.into(),
        tree: Some(format!("tree-of-{commit}")),
        base_commit: Some(base.into()),
        pull_request: Some(pull_request),
        holder_label: String::new(),
    }
}

fn merge_commit(base: &str, head: &str) -> MergedCommit {
    MergedCommit {
        commit: format!("merge-of-{head}"),
        parents: vec![base.into(), head.into()],
        tree: Some(format!("merged-tree-of-{head}-onto-{base}")),
    }
}

fn context() -> PolicyContext {
    let mut context = PolicyContext::at(&SystemClock);
    context.environment = Some("dev".into());
    context.event = Some("pull_request".into());
    context
}

fn dev_target() -> TerraformTarget {
    TerraformTarget {
        repository: "example/platform".into(),
        environment: "dev".into(),
        dir: "platform/infra/envs/dev".into(),
    }
}

fn stored_sha(outcome: &PlanOutcome) -> String {
    match outcome {
        PlanOutcome::Planned {
            change,
            stored_id: Some(_),
        } => change.sha256.clone(),
        other => panic!("expected a stored plan, got {other:?}"),
    }
}

fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn a_reviewed_plan_is_stored_encrypted_and_applied_exactly_after_the_merge() {
    let bench = Bench::new();
    let planned = bench.plan(12, "head-1", "base-0").await;
    let sha256 = stored_sha(&planned);
    let PlanOutcome::Planned { change, .. } = &planned else {
        unreachable!()
    };
    assert!(
        change.summary_text.contains("terraform_data"),
        "{}",
        change.summary_text
    );
    assert_eq!(change.outputs()["plan_sha256"], sha256);

    // Nothing of the plan file or its JSON is readable anywhere under the data directory.
    let record = bench
        .store
        .terraform_plan_by_sha256(&sha256)
        .unwrap()
        .unwrap();
    let plaintext_plan = sluice::terraform::operations::open_plan(&bench.key, &record).unwrap();
    assert_eq!(sluice::terraform::seal::sha256_hex(&plaintext_plan), sha256);
    let plan_json_text = serde_json::to_vec(&change.plan_json).unwrap();
    let mut needles: Vec<&[u8]> = (0..4)
        .map(|quarter| {
            let start = plaintext_plan.len() * quarter / 4;
            &plaintext_plan[start..(start + 48).min(plaintext_plan.len())]
        })
        .collect();
    needles.push(&plan_json_text[..64]);
    for file in files_under(bench.data_dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "plaintext plan bytes in {}",
                file.display()
            );
        }
    }
    // The checkout stays as it was: no .terraform, no lock file, no state.
    let dev_dir = bench.checkout.path().join("platform/infra/envs/dev");
    let mut left_in_dev: Vec<String> = std::fs::read_dir(&dev_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left_in_dev.sort();
    assert_eq!(
        left_in_dev,
        ["main.tf", "outputs.tf", "terraform.tfvars", "variables.tf"]
    );

    let lock = bench.store.terraform_lock(&dev_target()).unwrap().unwrap();
    assert_eq!(lock.holder.pull_request, Some(12));

    let applied = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "head-1"),
        )
        .await;
    let (applied_sha, outputs) = match applied {
        ApplyOutcome::Applied {
            sha256, outputs, ..
        } => (sha256, outputs),
        other => panic!("expected an apply, got {other:?}"),
    };
    assert_eq!(applied_sha, sha256);
    assert_eq!(outputs["cluster_name"], "ml-dev", "{outputs}");
    let record = bench
        .store
        .terraform_plan_by_sha256(&sha256)
        .unwrap()
        .unwrap();
    assert_eq!(record.apply_status.as_deref(), Some("applied"));
    assert!(record.apply_outputs.unwrap().contains("ml-dev"));
    assert!(
        bench.store.terraform_lock(&dev_target()).unwrap().is_none(),
        "the apply releases the lock"
    );

    // Idempotent: the same merge again applies nothing.
    let again = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "head-1"),
        )
        .await;
    assert_eq!(again, ApplyOutcome::AlreadyApplied { sha256 });
}

#[tokio::test]
async fn a_moved_base_refuses_unless_the_environment_applies_automatically() {
    let bench = Bench::new();
    stored_sha(&bench.plan(12, "head-1", "base-0").await);
    let refused = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-moved", "head-1"),
        )
        .await;
    let reason = match refused {
        ApplyOutcome::Refused(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        reason.contains("the base branch moved since the plan"),
        "{reason}"
    );
    assert!(reason.contains("re-plan"), "{reason}");

    let no_plan = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "never-planned"),
        )
        .await;
    assert!(
        matches!(&no_plan, ApplyOutcome::Refused(reason) if reason.contains("no reviewed plan for commit merge-of-never-planned")),
        "{no_plan:?}"
    );

    // `apply: auto` plans the merged commit again and applies that plan.
    let automatic = bench
        .merge(ApplyMode::Auto, merge_commit("base-moved", "head-1"))
        .await;
    assert!(
        matches!(automatic, ApplyOutcome::Applied { .. }),
        "{automatic:?}"
    );
}

#[tokio::test]
async fn a_superseded_plan_refuses_and_the_newer_one_applies() {
    let bench = Bench::new();
    stored_sha(&bench.plan(12, "head-1", "base-0").await);
    let newer = stored_sha(&bench.plan(12, "head-2", "base-0").await);
    let refused = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "head-1"),
        )
        .await;
    assert!(
        matches!(&refused, ApplyOutcome::Refused(reason) if reason.contains("superseded by a newer plan for commit head-2")),
        "{refused:?}"
    );
    let applied = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "head-2"),
        )
        .await;
    assert!(
        matches!(applied, ApplyOutcome::Applied { ref sha256, .. } if *sha256 == newer),
        "{applied:?}"
    );
}

#[tokio::test]
async fn tampered_ciphertext_refuses_to_apply() {
    let bench = Bench::new();
    let sha256 = stored_sha(&bench.plan(12, "head-1", "base-0").await);
    {
        let connection =
            rusqlite::Connection::open(bench.data_dir.path().join("sluice.db")).unwrap();
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let sealed: Vec<u8> = connection
            .query_row(
                "SELECT sealed_plan FROM terraform_plans WHERE sha256 = ?1",
                [&sha256],
                |row| row.get(0),
            )
            .unwrap();
        let mut tampered = sealed.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x40;
        connection
            .execute(
                "UPDATE terraform_plans SET sealed_plan = ?1 WHERE sha256 = ?2",
                rusqlite::params![tampered, sha256],
            )
            .unwrap();
    }
    let refused = bench
        .merge(
            ApplyMode::ReviewedPlanOnly,
            merge_commit("base-0", "head-1"),
        )
        .await;
    assert!(
        matches!(&refused, ApplyOutcome::Refused(reason) if reason.contains("tampered")),
        "{refused:?}"
    );
    let record = bench
        .store
        .terraform_plan_by_sha256(&sha256)
        .unwrap()
        .unwrap();
    assert_eq!(record.apply_status, None, "nothing was applied");
}

#[tokio::test]
async fn contention_is_a_result_and_closing_the_pull_request_releases_the_lock() {
    let bench = Bench::new();
    stored_sha(&bench.plan(12, "head-1", "base-0").await);
    let contended = bench.plan(13, "other-1", "base-0").await;
    let message = match contended {
        PlanOutcome::Locked(message) => message,
        other => panic!("expected contention, got {other:?}"),
    };
    assert!(
        message.contains("locked by pull request #12; apply or unlock it there"),
        "{message}"
    );

    // Kept across restarts.
    let reopened = SqliteStore::open(&bench.data_dir.path().join("sluice.db")).unwrap();
    let lock = reopened.terraform_lock(&dev_target()).unwrap().unwrap();
    assert_eq!(lock.holder.pull_request, Some(12));
    drop(reopened);

    let released =
        locks::release_for_closed_pull_request(&*bench.store, "example/platform", 12).unwrap();
    assert_eq!(released.len(), 1);
    stored_sha(&bench.plan(13, "other-1", "base-0").await);
    let released = locks::unlock(
        &*bench.store,
        "example/platform",
        "dev",
        "platform/infra/envs/dev",
    )
    .unwrap();
    assert_eq!(released.unwrap().holder.pull_request, Some(13));
}

fn lock_request(pull_request: u64, queue: bool) -> LockRequest {
    LockRequest {
        target: dev_target(),
        holder: locks::holder(Some(pull_request), ""),
        now: chrono::Utc::now(),
        lease: locks::DEFAULT_LEASE,
        queue,
    }
}

#[test]
fn the_queue_is_first_in_first_out_and_a_plan_under_a_lost_lock_is_not_stored() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
    let LockOutcome::Acquired { generation } = store
        .acquire_terraform_lock(&lock_request(1, true))
        .unwrap()
    else {
        panic!("a free lock is acquired")
    };
    assert!(matches!(
        store
            .acquire_terraform_lock(&lock_request(2, true))
            .unwrap(),
        LockOutcome::Queued { position: 1, .. }
    ));
    assert!(matches!(
        store
            .acquire_terraform_lock(&lock_request(3, true))
            .unwrap(),
        LockOutcome::Queued { position: 2, .. }
    ));
    assert!(matches!(
        store
            .acquire_terraform_lock(&lock_request(4, false))
            .unwrap(),
        LockOutcome::Held { .. }
    ));

    // Pull request 1 closes while its plan runs: the plan is not stored.
    store
        .release_terraform_locks_of_pull_request("example/platform", 1)
        .unwrap();
    let plan = NewTerraformPlan {
        target: dev_target(),
        workspace: "default".into(),
        sha256: "0".repeat(64),
        commit: "c".into(),
        tree: None,
        base_commit: None,
        pull_request: Some(1),
        created_at: chrono::Utc::now(),
        summary: String::new(),
        counts: String::new(),
        sealed_plan: vec![1],
        json_sha256: "1".repeat(64),
        sealed_json: vec![2],
        lock_generation: Some(generation),
    };
    assert_eq!(
        store.insert_terraform_plan(&plan).unwrap(),
        PlanInsert::LockLost
    );

    // The head of the queue goes first.
    assert!(matches!(
        store
            .acquire_terraform_lock(&lock_request(3, true))
            .unwrap(),
        LockOutcome::Queued { position: 2, .. }
    ));
    let LockOutcome::Acquired { generation: next } = store
        .acquire_terraform_lock(&lock_request(2, true))
        .unwrap()
    else {
        panic!("the head of the queue acquires the released lock")
    };
    assert!(next > generation, "a new holder gets a new generation");
    let _ = LockHolder {
        pull_request: None,
        label: String::new(),
    };
}

#[test]
fn a_missing_or_malformed_key_refuses_to_start() {
    let missing = PlanKey::from_lookup(|_| None).unwrap_err();
    assert_eq!(missing, SealError::MissingKey);
    assert!(missing.to_string().contains("SLUICE_PLAN_KEY"), "{missing}");
    let malformed =
        PlanKey::from_lookup(|name| (name == "SLUICE_PLAN_KEY").then(|| "not-a-key".into()))
            .unwrap_err();
    assert!(
        matches!(malformed, SealError::MalformedKey { .. }),
        "{malformed}"
    );
}

#[tokio::test]
async fn the_target_applies_the_release_plan_reports_health_and_refuses_rollback() {
    let bench = Bench::new();
    let sha256 = stored_sha(&bench.plan(12, "head-1", "base-0").await);
    let environment: sluice::config::environment::Environment =
        serde_json::from_value(serde_json::json!({
            "name": "dev",
            "terraform": {"dir": "platform/infra/envs/dev", "var_files": ["terraform.tfvars"]},
        }))
        .unwrap();
    let settings = sluice::terraform::TerraformSettings::from_environment(&environment)
        .unwrap()
        .unwrap();
    let store: Arc<dyn Store> = bench.store.clone();
    let target = sluice::targets::terraform::TerraformTarget::new(
        settings,
        "example/platform",
        bench.data_dir.path(),
        store,
        bench.key.clone(),
    );
    let context = DeployContext {
        environment: environment.clone(),
        release: Release {
            id: "r1-merge".into(),
            repository: "example/platform".into(),
            commit: "merge-of-head-1".into(),
            branch: "main".into(),
            author: None,
            created_at: 0,
            sequence: 1,
            images: Default::default(),
            plans: [("dev".to_owned(), sha256.clone())].into(),
            dag_tree: None,
            models: Default::default(),
            config_commit: None,
            contributors: Default::default(),
        },
        tree: bench.checkout.path().to_owned(),
        previous: None,
        applied: Default::default(),
    };
    let diff = target.diff(&context).await.unwrap();
    assert!(!diff.changes.is_empty());
    assert!(
        diff.facts["resource_changes"].is_array(),
        "the policy input is the reviewed plan's JSON"
    );
    assert!(matches!(
        target.health(&context).await.unwrap(),
        Health::Progressing(_)
    ));
    let applied = target.apply(&context).await.unwrap();
    assert_eq!(applied.outputs["cluster_name"], "ml-dev");
    assert_eq!(target.health(&context).await.unwrap(), Health::Healthy);
    let second = target.apply(&context).await.unwrap();
    assert!(
        second.summary.contains("applied already"),
        "{}",
        second.summary
    );
    assert_eq!(
        target.current(&environment).await.unwrap()["plan_sha256"],
        sha256.as_str()
    );
    let rollback = target
        .rollback(&context, &applied.rollback)
        .await
        .unwrap_err();
    assert!(
        matches!(&rollback, TargetError::Rejected(reason) if reason.contains("reviewed plan")),
        "{rollback}"
    );
}

#[test]
fn sluice_plan_prints_the_summary_and_exits_1_on_a_deny() {
    let bench = Bench::new();
    let run = |policies: &Path| {
        sluice_command(bench.data_dir.path())
            .args(["plan", "--env", "dev", "--root"])
            .arg(bench.checkout.path())
            .arg("--policies")
            .arg(policies)
            .output()
            .unwrap()
    };
    let passed = run(bench.empty_policies.path());
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(stdout.contains("to add"), "{stdout}");
    assert!(stdout.contains("passed"), "{stdout}");

    let denying = tempfile::tempdir().unwrap();
    std::fs::write(
        denying.path().join("no_data.rego"),
        "package sluice.no_data\n\ndeny contains msg if {\n  some change in input.terraform.resource_changes\n  change.type == \"terraform_data\"\n  msg := sprintf(\"%s: terraform_data is not allowed\", [change.address])\n}\n",
    )
    .unwrap();
    let denied = run(denying.path());
    let stdout = String::from_utf8_lossy(&denied.stdout);
    assert_eq!(denied.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("terraform_data is not allowed"), "{stdout}");
}
