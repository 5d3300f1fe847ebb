//! What a build reuses and pushes at each trust level, against the real engine and registry: an
//! image planted with the content-digest label is never shipped, a trusted build reuses only what
//! sluice recorded building at trusted level, a member pull request pushes only its own tag and
//! may reuse a trusted image, and a fork's pull request builds nothing.

use super::support::TestRepo;
use super::{
    REGISTRY, app_files, app_job, commit, job_log, output, pipeline, registry_digest,
    registry_tags, sluice_run, sluice_run_as, unique,
};
use sluice::steps::build::{BuildInputs, context_digest, plan_context};
use sluice::store::ImageRecords;
use std::collections::BTreeMap;
use std::process::Command;

/// The build arguments and labels of `app_job`.
fn app_inputs() -> BuildInputs {
    BuildInputs {
        args: BTreeMap::from([("GREETING".to_owned(), "hello-from-args".to_owned())]),
        target: None,
        labels: BTreeMap::from([("team".to_owned(), "ml-platform".to_owned())]),
    }
}

/// The content digest a build of `app_job` at the repository's working tree computes.
fn app_context_digest(repo: &TestRepo) -> String {
    let plan = plan_context(repo.path(), "app", "app/Dockerfile").unwrap();
    context_digest(&plan, &app_inputs()).unwrap()
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker").args(arguments).output().unwrap();
    assert!(
        output.status.success(),
        "docker {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// What the image's default command prints: the fixture's image prints its greeting file.
fn greeting(reference: &str) -> String {
    docker(&["run", "--rm", reference])
}

#[test]
fn a_planted_image_carrying_the_content_digest_label_is_rebuilt_not_shipped() {
    let repo = TestRepo::new();
    let repository = unique("sluice-test/planted");
    let mut files = app_files(&unique("nonce"));
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &repository)),
    ));
    files.push(("README.md".to_owned(), "first\n".to_owned()));
    let first_sha = commit(&repo, &files, "first");
    let digest = app_context_digest(&repo);

    // What a step with access to the engine and the registry could do: an image of other
    // content, labelled with the digest the next build computes, under the content tag too.
    let planted_context = tempfile::tempdir().unwrap();
    std::fs::write(
        planted_context.path().join("Dockerfile"),
        "FROM local/busybox:1\nRUN mkdir -p /app && echo planted > /app/greeting.txt\nCMD [\"cat\", \"/app/greeting.txt\"]\n",
    )
    .unwrap();
    let content_tag = format!(
        "{REGISTRY}/{repository}:context-{}",
        digest.trim_start_matches("sha256:")
    );
    docker(&[
        "build",
        "-q",
        "--label",
        &format!("dev.sluice.context-digest={digest}"),
        "-t",
        &content_tag,
        planted_context.path().to_str().unwrap(),
    ]);
    docker(&["push", &content_tag]);
    let planted_id = docker(&["image", "inspect", "--format", "{{.Id}}", &content_tag]);
    assert_eq!(greeting(&content_tag), "planted");

    let data = tempfile::tempdir().unwrap();
    let first = sluice_run(&repo, &first_sha, data.path(), &[]);
    assert_eq!(first.code, Some(0), "{}", first.output);
    assert_eq!(
        output(&first, "app", "context-digest"),
        digest,
        "the planted label carries the digest the build computed"
    );
    assert_eq!(output(&first, "app", "built"), "true", "{}", first.output);
    assert_ne!(output(&first, "app", "image-id"), planted_id);
    let log = job_log(&first, data.path(), "app");
    assert!(
        log.contains(&format!(
            "image {planted_id} in the engine has this content digest but sluice has no record of building it for "
        )) && log.contains("at trust level trusted; building"),
        "the log says why the engine's image was not reused: {log}"
    );
    assert!(
        log.contains(
            "in the registry has this content digest but sluice has no record of pushing it"
        ),
        "the log says why the registry's image was not reused: {log}"
    );
    let pushed = output(&first, "app", "image");
    assert_eq!(
        greeting(pushed),
        "hello-from-args",
        "the pushed image holds the commit's content, not the planted one"
    );
    assert_eq!(
        registry_digest(&repository, &first_sha[..7]).as_deref(),
        Some(output(&first, "app", "digest"))
    );

    // The image sluice recorded is reused by the next trusted build; the planted one still is not.
    let second_sha = repo.commit(&[("README.md", "second\n")], "docs only");
    let second = sluice_run(&repo, &second_sha, data.path(), &[]);
    assert_eq!(second.code, Some(0), "{}", second.output);
    assert_eq!(
        output(&second, "app", "built"),
        "false",
        "{}",
        second.output
    );
    assert_eq!(
        output(&second, "app", "image-id"),
        output(&first, "app", "image-id")
    );
    assert_eq!(
        output(&second, "app", "digest"),
        output(&first, "app", "digest")
    );
    let log = job_log(&second, data.path(), "app");
    assert!(
        log.contains("sluice built it for ")
            && log.contains("at trust level trusted in run 1; not building"),
        "{log}"
    );
    assert!(
        !log.contains("Step 1/"),
        "the engine was not asked to build: {log}"
    );
    assert_eq!(greeting(output(&second, "app", "image")), "hello-from-args");
}

#[test]
fn a_member_pull_request_pushes_only_its_tag_and_only_a_trusted_record_is_reused_by_a_merge() {
    let repo = TestRepo::new();
    let repository = unique("sluice-test/member");
    let mut files = app_files(&unique("nonce"));
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &repository)),
    ));
    let sha = commit(&repo, &files, "first");
    let data = tempfile::tempdir().unwrap();

    let member = sluice_run_as(&repo, &sha, data.path(), "pull_request", &[]);
    assert_eq!(member.code, Some(0), "{}", member.output);
    assert_eq!(output(&member, "app", "built"), "true");
    assert_eq!(
        registry_tags(&repository),
        vec!["pr-0"],
        "a member build pushes its pull-request tag and nothing else"
    );
    assert_eq!(
        output(&member, "app", "image"),
        format!(
            "{REGISTRY}/{repository}@{}",
            output(&member, "app", "digest")
        )
    );
    let log = job_log(&member, data.path(), "app");
    assert!(log.contains("a member run tags its image only as"), "{log}");

    // The merge of the same content does not take the member's image: it builds its own.
    let merge = sluice_run(&repo, &sha, data.path(), &[]);
    assert_eq!(merge.code, Some(0), "{}", merge.output);
    assert_eq!(output(&merge, "app", "built"), "true", "{}", merge.output);
    let log = job_log(&merge, data.path(), "app");
    assert!(
        log.contains("at trust level member only")
            && log.contains("a trusted build reuses only what a trusted run made; building"),
        "{log}"
    );
    let trusted_digest = output(&merge, "app", "digest").to_owned();
    let tags = registry_tags(&repository);
    for tag in [&sha[..7], "feature-images", "pr-0"] {
        assert!(tags.iter().any(|found| found == tag), "{tag} in {tags:?}");
    }
    assert_eq!(
        registry_digest(&repository, &sha[..7]).as_deref(),
        Some(trusted_digest.as_str())
    );

    // A member build may reuse what a trusted run built; it moves only its own tag.
    let again_sha = repo.commit(&[("README.md", "docs\n")], "docs only");
    let again = sluice_run_as(&repo, &again_sha, data.path(), "pull_request", &[]);
    assert_eq!(again.code, Some(0), "{}", again.output);
    assert_eq!(output(&again, "app", "built"), "false", "{}", again.output);
    assert_eq!(
        output(&again, "app", "image-id"),
        output(&merge, "app", "image-id")
    );
    assert_eq!(output(&again, "app", "digest"), trusted_digest);
    assert_eq!(
        registry_digest(&repository, "pr-0").as_deref(),
        Some(trusted_digest.as_str())
    );
    assert!(
        !registry_tags(&repository)
            .iter()
            .any(|tag| tag == &again_sha[..7]),
        "the member run did not push the configured sha tag"
    );
}

#[test]
fn a_fork_pull_request_build_is_not_started_and_the_engine_builds_nothing() {
    let repo = TestRepo::new();
    let repository = unique("sluice-test/fork");
    let files = app_files(&unique("nonce"));
    let sha = commit(&repo, &files, "from a fork");
    let data = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        sluice::store::SqliteStore::open(&data.path().join("sluice.db")).unwrap(),
    );
    let step = sluice::config::build::BuildStep {
        context: "app".to_owned(),
        dockerfile: None,
        image: format!("{REGISTRY}/{repository}"),
        registry: None,
        tags: vec!["latest".to_owned()],
        args: app_inputs().args,
        target: None,
        labels: app_inputs().labels,
        push: true,
        credentials: None,
    };
    let event = sluice::model::Event {
        kind: sluice::model::EventKind::PullRequest,
        repository: "acme/ml-platform".to_owned(),
        git_ref: "refs/heads/patch-1".to_owned(),
        commit: sha.clone(),
        before: None,
        base_branch: Some("main".to_owned()),
        action: Some("opened".to_owned()),
        pull_request: Some(7),
        actor: Some("someone-else".to_owned()),
        changed_paths: None,
    };
    let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let context = sluice::steps::StepContext {
        workspace: repo.path().to_owned(),
        scratch: data.path().join("scratch"),
        env: BTreeMap::new(),
        template_values: serde_json::json!({ "git": { "sha": sha, "short_sha": &sha[..7] } }),
        event,
        trust: sluice::model::TrustLevel::Untrusted,
        authority_tree: None,
        isolation: sluice::steps::Isolation::default(),
        run_id: 1,
        job: "app".to_owned(),
        pipeline: "images".to_owned(),
        data_dir: data.path().to_owned(),
        store: store.clone(),
        targets: None,
        log,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(sluice::steps::build::execute(&step, &context));
    let sluice::steps::StepOutcome::NotStarted(message) = &outcome else {
        panic!("the build step should not start for a fork's pull request: {outcome:?}");
    };
    assert!(
        message.contains("a fork's pull request builds no images"),
        "{message}"
    );
    assert!(
        message.contains("pull request #7 of acme/ml-platform"),
        "{message}"
    );
    drop(context);
    let mut logged = String::new();
    while let Ok(line) = lines.try_recv() {
        logged.push_str(&line);
    }
    assert!(!logged.contains("building"), "{logged}");
    let labelled = docker(&[
        "images",
        "-q",
        "--filter",
        &format!(
            "label=dev.sluice.context-digest={}",
            app_context_digest(&repo)
        ),
    ]);
    assert_eq!(labelled, "", "the engine holds no image of this content");
    let named = docker(&["images", "-q", &format!("{REGISTRY}/{repository}")]);
    assert_eq!(named, "", "the engine holds no image under the step's name");
    assert!(registry_tags(&repository).is_empty());
    assert!(
        store
            .image_records("acme/ml-platform", &app_context_digest(&repo))
            .unwrap()
            .is_empty()
    );
}
