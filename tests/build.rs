//! `build` steps against the real Docker engine and the registry on 127.0.0.1:5000
//! (scripts/setup-docker.sh and scripts/setup-registry.sh start them): pushed by digest, labelled,
//! failing with the Dockerfile line, `.dockerignore` keeping the context small, re-runs that build
//! nothing, and an unreachable engine named in the error. The runs here are trusted (merges);
//! `build/trust.rs` has what each trust level may reuse and push. Every test uses its own image
//! names and a nonce file, so runs of the suite never reuse each other's images.

mod support;
#[path = "build/trust.rs"]
mod trust;

use std::path::Path;
use std::process::Command;
use support::TestRepo;

const REGISTRY: &str = "127.0.0.1:5000";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/build");

/// A name no other test or earlier run used.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// The fixture's `app/` context plus a nonce file, as files for `TestRepo::commit`.
fn app_files(nonce: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for path in [
        "app/Dockerfile",
        "app/.dockerignore",
        "app/src/hello.txt",
        "app/src/keep.tmp",
    ] {
        let contents = std::fs::read_to_string(Path::new(FIXTURES).join(path)).unwrap();
        files.push((path.to_owned(), contents));
    }
    files.push(("app/src/nonce.txt".to_owned(), format!("{nonce}\n")));
    files
}

fn commit(repo: &TestRepo, files: &[(String, String)], message: &str) -> String {
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, contents)| (path.as_str(), contents.as_str()))
        .collect();
    repo.commit(&borrowed, message)
}

struct Outcome {
    code: Option<i32>,
    runs: serde_json::Value,
    output: String,
}

/// `sluice run` of the commit as a merge of `feature/images`: a trusted run.
fn sluice_run(repo: &TestRepo, commit: &str, data: &Path, extra_env: &[(&str, &str)]) -> Outcome {
    sluice_run_as(repo, commit, data, "merge", extra_env)
}

/// `sluice run` of the commit on `feature/images` as `event`: `merge` is trusted, `push` and
/// `pull_request` (pull request 0) are member runs.
fn sluice_run_as(
    repo: &TestRepo,
    commit: &str,
    data: &Path,
    event: &str,
    extra_env: &[(&str, &str)],
) -> Outcome {
    let mut command = support::sluice_command(data);
    command
        .args([
            "run",
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            commit,
        ])
        .args(["--branch", "feature/images", "--event", event, "--json"])
        .env_remove("DOCKER_HOST");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Outcome {
        code: output.status.code(),
        runs: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    }
}

fn job<'a>(outcome: &'a Outcome, name: &str) -> &'a serde_json::Value {
    outcome.runs[0]["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|job| job["name"] == name))
        .unwrap_or_else(|| panic!("no job {name} in {}", outcome.output))
}

fn output<'a>(outcome: &'a Outcome, job_name: &str, key: &str) -> &'a str {
    job(outcome, job_name)["outputs"][key]
        .as_str()
        .unwrap_or_else(|| panic!("job {job_name} has no output {key}: {}", outcome.output))
}

fn job_log(outcome: &Outcome, data: &Path, job_name: &str) -> String {
    let output = support::sluice(
        data,
        &["logs", &outcome.runs[0]["id"].to_string(), job_name],
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The registry's digest for `repository:tag`, by its HTTP API.
fn registry_digest(repository: &str, tag: &str) -> Option<String> {
    let response = support::http()
        .get(format!("http://{REGISTRY}/v2/{repository}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .expect("the registry on 127.0.0.1:5000 answers; scripts/setup-registry.sh starts it");
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(response.status().is_success(), "{response:?}");
    response
        .headers()
        .get("Docker-Content-Digest")
        .map(|value| value.to_str().unwrap().to_owned())
}

/// The repository's tags in the registry, sorted, by its HTTP API; none when it has no such
/// repository.
fn registry_tags(repository: &str) -> Vec<String> {
    let response = support::http()
        .get(format!("http://{REGISTRY}/v2/{repository}/tags/list"))
        .send()
        .expect("the registry on 127.0.0.1:5000 answers; scripts/setup-registry.sh starts it");
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Vec::new();
    }
    assert!(response.status().is_success(), "{response:?}");
    let body: serde_json::Value = response.json().unwrap();
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|tag| tag.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// `docker image inspect` through the CLI, as a user would check.
fn inspect(reference: &str) -> serde_json::Value {
    let output = Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker image inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    list[0].clone()
}

fn pipeline(jobs: &str) -> String {
    format!("name: images\non: {{ push: {{}}, pull_request: {{}} }}\njobs:\n{jobs}")
}

fn app_job(job_name: &str, repository: &str) -> String {
    format!(
        "  {job_name}:\n    steps:\n      - build:\n          context: app\n          image: {REGISTRY}/{repository}\n          tags: [\"{{{{ git.short_sha }}}}\", \"{{{{ git.branch }}}}\"]\n          args: {{ GREETING: hello-from-args }}\n          labels: {{ team: ml-platform }}\n"
    )
}

#[test]
fn a_build_is_pushed_by_digest_with_its_tags_and_labels() {
    let repository = unique("sluice-test/app");
    let repo = TestRepo::new();
    let mut files = app_files(&unique("nonce"));
    let consumer = "  deploy:\n    needs: app\n    steps:\n      - run: echo \"deploying ${{ needs.app.outputs.image }}\"\n";
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&format!("{}{consumer}", app_job("app", &repository))),
    ));
    let sha = commit(&repo, &files, "app image");
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(&repo, &sha, data.path(), &[]);
    assert_eq!(
        outcome.code,
        Some(0),
        "are the engine and registry running? scripts/setup-docker.sh and scripts/setup-registry.sh start them.\n{}",
        outcome.output
    );
    let digest = output(&outcome, "app", "digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        output(&outcome, "app", "image"),
        format!("{REGISTRY}/{repository}@{digest}")
    );
    assert_eq!(output(&outcome, "app", "built"), "true");
    let short_sha = &sha[..7];
    assert_eq!(
        registry_digest(&repository, short_sha).as_deref(),
        Some(digest),
        "the registry's digest for the short-sha tag is the recorded one"
    );
    assert_eq!(
        registry_digest(&repository, "feature-images").as_deref(),
        Some(digest),
        "the branch `feature/images` becomes the tag `feature-images`"
    );
    let image = inspect(&format!("{REGISTRY}/{repository}:{short_sha}"));
    let labels = &image["Config"]["Labels"];
    assert_eq!(
        labels["dev.sluice.context-digest"].as_str(),
        Some(output(&outcome, "app", "context-digest"))
    );
    assert_eq!(
        labels["org.opencontainers.image.revision"].as_str(),
        Some(sha.as_str())
    );
    assert!(labels["org.opencontainers.image.source"].is_string());
    assert!(labels["org.opencontainers.image.created"].is_string());
    assert_eq!(labels["team"], "ml-platform");
    assert_eq!(
        image["Id"].as_str(),
        Some(output(&outcome, "app", "image-id"))
    );
    let run = Command::new("docker")
        .args(["run", "--rm", &format!("{REGISTRY}/{repository}@{digest}")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello-from-args",
        "the build argument reached the image: {run:?}"
    );
    let deploy_log = job_log(&outcome, data.path(), "deploy");
    assert!(
        deploy_log.contains(&format!("deploying {REGISTRY}/{repository}@{digest}")),
        "a later job refers to the image by digest: {deploy_log}"
    );
    let build_log = job_log(&outcome, data.path(), "app");
    assert!(
        build_log.contains("Step 1/"),
        "the engine's output is in the job log: {build_log}"
    );
}

#[test]
fn a_failing_run_instruction_is_reported_with_its_line_and_exit_code() {
    let repo = TestRepo::new();
    let dockerfile =
        std::fs::read_to_string(Path::new(FIXTURES).join("failing.Dockerfile")).unwrap();
    let repository = unique("sluice-test/failing");
    let files = vec![
        ("broken/Dockerfile".to_owned(), dockerfile),
        ("broken/nonce.txt".to_owned(), unique("nonce")),
        (
            "workflows/images.yaml".to_owned(),
            pipeline(&format!(
                "  broken:\n    steps:\n      - build: {{ context: broken, image: \"{REGISTRY}/{repository}\" }}\n  unrelated:\n    steps:\n      - run: echo still runs\n"
            )),
        ),
    ];
    let sha = commit(&repo, &files, "broken image");
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(&repo, &sha, data.path(), &[]);
    assert_eq!(outcome.code, Some(1), "{}", outcome.output);
    let broken = job(&outcome, "broken");
    assert_eq!(broken["status"], "failed");
    let reason = broken["reason"].as_str().unwrap();
    assert!(
        reason.contains("broken/Dockerfile line 5"),
        "the reason names the Dockerfile and the instruction's first line: {reason}"
    );
    assert!(reason.contains("exit code 7"), "{reason}");
    assert!(reason.contains("RUN echo \"about to fail\""), "{reason}");
    assert_eq!(job(&outcome, "unrelated")["status"], "succeeded");
    let log = job_log(&outcome, data.path(), "broken");
    assert!(log.contains("step before the failure"), "{log}");
    assert!(log.contains("line 5"), "{log}");
    assert!(!log.contains("never reached"), "{log}");
}

#[test]
fn dockerignore_keeps_a_large_file_out_of_the_streamed_context() {
    let repo = TestRepo::new();
    let mut files = app_files(&unique("nonce"));
    let repository = unique("sluice-test/ignore");
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &repository)),
    ));
    commit(&repo, &files, "app");
    // 32 MiB of data beside the sources, matched by `**/*.bin`.
    let big_file = repo.path().join("app/src/data/big.bin");
    std::fs::create_dir_all(big_file.parent().unwrap()).unwrap();
    std::fs::write(&big_file, vec![0x5a_u8; 32 * 1024 * 1024]).unwrap();
    std::fs::write(repo.path().join("app/src/scratch.tmp"), "dropped").unwrap();
    let sha = repo.commit(&[], "large data");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent = runtime
        .block_on(sluice::steps::build::context_bytes(
            repo.path(),
            "app",
            "app/Dockerfile",
        ))
        .unwrap();
    assert!(
        sent < 64 * 1024,
        "the context sent is {sent} bytes; .dockerignore should keep the 32 MiB file out"
    );
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(&repo, &sha, data.path(), &[]);
    assert_eq!(outcome.code, Some(0), "{}", outcome.output);
    let log = job_log(&outcome, data.path(), "app");
    let sent_in_run: u64 = log
        .lines()
        .find_map(|line| {
            line.strip_prefix("sluice: build: sent ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|number| number.parse().ok())
        })
        .unwrap_or_else(|| panic!("no `sent N bytes` line in the log: {log}"));
    assert!(sent_in_run < 64 * 1024, "{sent_in_run} bytes sent: {log}");
    let image = format!(
        "{REGISTRY}/{repository}@{}",
        output(&outcome, "app", "digest")
    );
    let listing = Command::new("docker")
        .args(["run", "--rm", &image, "find", "/app"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("keep.tmp"),
        "the `!` exception kept it: {listing}"
    );
    assert!(!listing.contains("scratch.tmp"), "{listing}");
    assert!(!listing.contains("big.bin"), "{listing}");
    assert!(listing.contains("hello.txt"), "{listing}");
}

#[test]
fn an_unchanged_rerun_builds_nothing_and_a_one_byte_change_rebuilds() {
    let repo = TestRepo::new();
    let repository = unique("sluice-test/rerun");
    let mut files = app_files(&unique("nonce"));
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &repository)),
    ));
    files.push(("README.md".to_owned(), "first\n".to_owned()));
    let first_sha = commit(&repo, &files, "first");
    let data = tempfile::tempdir().unwrap();
    let first = sluice_run(&repo, &first_sha, data.path(), &[]);
    assert_eq!(first.code, Some(0), "{}", first.output);
    assert_eq!(output(&first, "app", "built"), "true");
    let first_image_id = output(&first, "app", "image-id").to_owned();
    let first_digest = output(&first, "app", "digest").to_owned();

    // A change outside the context: nothing to build, the new tags point at the same image.
    let second_sha = repo.commit(&[("README.md", "second\n")], "docs only");
    let second = sluice_run(&repo, &second_sha, data.path(), &[]);
    assert_eq!(second.code, Some(0), "{}", second.output);
    assert_eq!(
        output(&second, "app", "built"),
        "false",
        "{}",
        second.output
    );
    assert_eq!(output(&second, "app", "image-id"), first_image_id);
    assert_eq!(output(&second, "app", "digest"), first_digest);
    let log = job_log(&second, data.path(), "app");
    assert!(log.contains("not building"), "{log}");
    assert!(
        !log.contains("Step 1/"),
        "the engine was not asked to build: {log}"
    );
    assert!(
        !log.contains("sluice: build: sent"),
        "no context was sent: {log}"
    );
    assert_eq!(
        inspect(&format!("{REGISTRY}/{repository}:{}", &second_sha[..7]))["Id"].as_str(),
        Some(first_image_id.as_str()),
        "the new commit's tag names the image built for the first"
    );
    assert_eq!(
        registry_digest(&repository, &second_sha[..7]).as_deref(),
        Some(first_digest.as_str())
    );

    // One byte more in a file of the context: a new build, a new image.
    let hello = std::fs::read_to_string(repo.path().join("app/src/hello.txt")).unwrap();
    let third_sha = repo.commit(&[("app/src/hello.txt", &format!("{hello}!"))], "one byte");
    let third = sluice_run(&repo, &third_sha, data.path(), &[]);
    assert_eq!(third.code, Some(0), "{}", third.output);
    assert_eq!(output(&third, "app", "built"), "true");
    assert_ne!(output(&third, "app", "image-id"), first_image_id);
    assert_ne!(output(&third, "app", "digest"), first_digest);
    assert_ne!(
        output(&third, "app", "context-digest"),
        output(&first, "app", "context-digest")
    );
}

#[test]
fn a_second_build_of_the_same_context_makes_no_build_call() {
    let repo = TestRepo::new();
    let files = app_files(&unique("nonce"));
    commit(&repo, &files, "context");
    let repository = unique("sluice-test/calls");
    let request = sluice::steps::build::BuildRequest {
        workspace: repo.path().to_owned(),
        context: "app".to_owned(),
        dockerfile: "app/Dockerfile".to_owned(),
        image: sluice::steps::build::ImageName::parse(&format!("{REGISTRY}/{repository}"), None)
            .unwrap(),
        tags: vec!["first".to_owned()],
        inputs: Default::default(),
        push: true,
        credentials: None,
        revision: "0".repeat(40),
        source: "https://example.com/acme/platform".to_owned(),
    };
    let data = tempfile::tempdir().unwrap();
    let provenance = sluice::steps::build::Provenance {
        store: std::sync::Arc::new(
            sluice::store::SqliteStore::open(&data.path().join("sluice.db")).unwrap(),
        ),
        repository: "acme/platform".to_owned(),
        run_id: 1,
        trust: sluice::model::TrustLevel::Trusted,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let calls_before = sluice::steps::build::build_calls();
    let first = runtime
        .block_on(sluice::steps::build::build_and_push(
            &request,
            &provenance,
            &log,
            &cancel,
        ))
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(sluice::steps::build::build_calls(), calls_before + 1);
    assert!(first.built);
    let second_request = sluice::steps::build::BuildRequest {
        tags: vec!["second".to_owned()],
        ..request
    };
    let second = runtime
        .block_on(sluice::steps::build::build_and_push(
            &second_request,
            &provenance,
            &log,
            &cancel,
        ))
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(
        sluice::steps::build::build_calls(),
        calls_before + 1,
        "no second build call"
    );
    assert!(!second.built);
    assert_eq!(second.image_id, first.image_id);
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.context_bytes, 0);
    drop(log);
    let mut text = String::new();
    while let Ok(line) = lines.try_recv() {
        text.push_str(&line);
    }
    assert!(text.contains("not building"), "{text}");
}

#[test]
fn an_unreachable_engine_is_named_with_how_to_start_one() {
    let repo = TestRepo::new();
    let mut files = app_files(&unique("nonce"));
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &unique("sluice-test/unreachable"))),
    ));
    let sha = commit(&repo, &files, "app");
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(
        &repo,
        &sha,
        data.path(),
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(outcome.code, Some(1), "{}", outcome.output);
    let reason = job(&outcome, "app")["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{reason}"
    );
    assert!(reason.contains("scripts/setup-docker.sh"), "{reason}");
    assert!(reason.contains("DOCKER_HOST"), "{reason}");
}

#[test]
fn each_bad_input_fails_only_its_own_job_with_a_clear_message() {
    let repo = TestRepo::new();
    let mut files = app_files(&unique("nonce"));
    files.push((
        "nobase/Dockerfile".to_owned(),
        "FROM local/no-such-base:1\nRUN true\n".to_owned(),
    ));
    files.push(("nobase/nonce.txt".to_owned(), unique("nonce")));
    files.push((
        "linked/Dockerfile".to_owned(),
        "FROM local/busybox:1\n".to_owned(),
    ));
    let jobs = format!(
        concat!(
            "  fine:\n    steps:\n      - run: echo fine\n",
            "  bad-tag:\n    steps:\n      - build: {{ context: app, image: \"{REGISTRY}/{bad_tag}\", tags: [\"{{{{ git.tag }}}}\", \"v 1\"] }}\n",
            "  no-dockerfile:\n    steps:\n      - build: {{ context: app, dockerfile: app/Missing.Dockerfile, image: \"{REGISTRY}/{missing}\" }}\n",
            "  no-base:\n    steps:\n      - build: {{ context: nobase, image: \"{REGISTRY}/{no_base}\" }}\n",
            "  escaping-link:\n    steps:\n      - build: {{ context: linked, image: \"{REGISTRY}/{linked}\" }}\n",
            "  no-registry:\n    steps:\n      - build: {{ context: app, image: \"127.0.0.1:9/{refused}\" }}\n",
        ),
        REGISTRY = REGISTRY,
        bad_tag = unique("sluice-test/bad-tag"),
        missing = unique("sluice-test/missing"),
        no_base = unique("sluice-test/no-base"),
        linked = unique("sluice-test/linked"),
        refused = unique("sluice-test/refused"),
    );
    files.push(("workflows/images.yaml".to_owned(), pipeline(&jobs)));
    commit(&repo, &files, "bad inputs");
    std::os::unix::fs::symlink("../../../etc/passwd", repo.path().join("linked/passwd")).unwrap();
    let sha = repo.commit(&[], "a link out of the context");
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(&repo, &sha, data.path(), &[]);
    assert_eq!(outcome.code, Some(1), "{}", outcome.output);
    assert_eq!(job(&outcome, "fine")["status"], "succeeded");
    let check = |job_name: &str, fragments: &[&str]| {
        let job = job(&outcome, job_name);
        assert_eq!(job["status"], "failed", "{job_name}: {job}");
        let reason = job["reason"].as_str().unwrap();
        for fragment in fragments {
            assert!(
                reason.contains(fragment),
                "{job_name}: `{fragment}` not in: {reason}"
            );
        }
    };
    check(
        "bad-tag",
        &["`{{ git.tag }}` renders to an empty tag", "`v 1`"],
    );
    check(
        "no-dockerfile",
        &["Dockerfile `app/Missing.Dockerfile` does not exist"],
    );
    check(
        "no-base",
        &[
            "nobase/Dockerfile line 1",
            "cannot be pulled",
            "local/no-such-base:1",
        ],
    );
    check(
        "escaping-link",
        &["`passwd` -> `../../../etc/passwd`", "outside"],
    );
    check(
        "no-registry",
        &["cannot reach registry 127.0.0.1:9", "setup-registry.sh"],
    );
}

#[test]
fn an_image_only_in_the_registry_is_tagged_there_instead_of_built() {
    let repo = TestRepo::new();
    let repository = unique("sluice-test/registry-only");
    let mut files = app_files(&unique("nonce"));
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&app_job("app", &repository)),
    ));
    let first_sha = commit(&repo, &files, "first");
    let data = tempfile::tempdir().unwrap();
    let first = sluice_run(&repo, &first_sha, data.path(), &[]);
    assert_eq!(first.code, Some(0), "{}", first.output);
    let first_digest = output(&first, "app", "digest").to_owned();
    // As on another machine, or after the engine was pruned: the image is gone from the engine.
    let removed = Command::new("docker")
        .args(["rmi", "-f", output(&first, "app", "image-id")])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removed:?}");

    let second_sha = repo.commit(&[("README.md", "docs\n")], "docs only");
    let second = sluice_run(&repo, &second_sha, data.path(), &[]);
    assert_eq!(second.code, Some(0), "{}", second.output);
    assert_eq!(output(&second, "app", "built"), "false");
    assert_eq!(output(&second, "app", "digest"), first_digest);
    assert!(
        job(&second, "app")["outputs"].get("image-id").is_none(),
        "nothing was pulled or built: {}",
        second.output
    );
    let log = job_log(&second, data.path(), "app");
    assert!(
        log.contains("in the registry already has context digest"),
        "{log}"
    );
    assert!(!log.contains("Step 1/"), "{log}");
    assert_eq!(
        registry_digest(&repository, &second_sha[..7]).as_deref(),
        Some(first_digest.as_str()),
        "the new commit's tag was added in the registry"
    );
}

#[test]
fn builds_beyond_the_parallel_limit_wait_for_a_slot() {
    let repo = TestRepo::new();
    let mut files = app_files(&unique("nonce"));
    // A second context with different content, so that the two jobs cannot reuse each other.
    for (path, contents) in app_files(&unique("other nonce")) {
        files.push((path.replacen("app/", "other/", 1), contents));
    }
    let other_job = app_job("other", &unique("sluice-test/parallel-b"))
        .replace("context: app", "context: other");
    files.push((
        "workflows/images.yaml".to_owned(),
        pipeline(&format!(
            "{}{other_job}",
            app_job("app", &unique("sluice-test/parallel-a"))
        )),
    ));
    let sha = commit(&repo, &files, "two images");
    let data = tempfile::tempdir().unwrap();
    let outcome = sluice_run(
        &repo,
        &sha,
        data.path(),
        &[("SLUICE_MAX_PARALLEL_BUILDS", "1")],
    );
    assert_eq!(outcome.code, Some(0), "{}", outcome.output);
    let waited: Vec<bool> = ["app", "other"]
        .iter()
        .map(|job_name| {
            job_log(&outcome, data.path(), job_name)
                .contains("waiting for a build slot (1 builds at once")
        })
        .collect();
    assert_eq!(
        waited.iter().filter(|waited| **waited).count(),
        1,
        "with one slot, one of the two builds waits for the other: {waited:?}"
    );
}
