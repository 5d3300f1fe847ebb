//! Personal API tokens and roles against a real `sluice serve`: who may approve, promote, force and
//! unlock; the person recorded is the token's owner, never a field of the body; expired and
//! revoked tokens are refused; a promotion waits for its soak unless an admin forces it with a
//! reason, and the history says who skipped what and why. Also the Terraform locks' API and CLI.

mod support;

use chrono::Utc;
use sluice::model::access::{Role, token_sha256};
use sluice::store::{
    ApiTokens, LockOutcome, LockRequest, NewApiToken, SqliteStore, TerraformStore, TerraformTarget,
};
use sluice::terraform::locks;
use std::path::Path;
use std::time::Duration;
use support::*;

const PIPELINE: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
const DEV: &str = "name: dev\nkubernetes: { namespace: ml-dev, manifests: k8s }\n";
const STAGING: &str = "name: staging\nafter: dev\ngates: { soak: 30m, approvals: 1 }\nkubernetes: { namespace: ml-staging, manifests: k8s }\n";
const SERVER_CONFIG: &str = "promotion: { interval: 200ms, health-poll: 50ms }\n";
const BOOTSTRAP: &str = "the-bootstrap-token";

fn create_token(data: &Path, name: &str, role: &str) -> String {
    sluice_ok(data, &["token", "create", name, "--role", role])
        .trim()
        .to_owned()
}

/// POSTs an action; returns the status and the JSON answer.
fn act(
    server: &Server,
    token: &str,
    environment: &str,
    verb: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = http()
        .post(server.url(&format!("/api/environments/{environment}/{verb}")))
        .header("authorization", format!("Bearer {token}"))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or_default())
}

fn get(server: &Server, path: &str) -> serde_json::Value {
    http().get(server.url(path)).send().unwrap().json().unwrap()
}

/// Asserts an API answer is refused with `status` and an error saying `fragment`.
fn refused((status, answer): (u16, serde_json::Value), expected: u16, fragment: &str) {
    assert_eq!(status, expected, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(fragment),
        "{answer}"
    );
}

fn history(server: &Server) -> Vec<serde_json::Value> {
    get(server, "/api/history?environment=staging")
        .as_array()
        .unwrap()
        .clone()
}

fn start(data: &Path, repo: &TestRepo) -> Server {
    let calls = data.join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.join("server.yaml");
    std::fs::write(&config, SERVER_CONFIG).unwrap();
    Server::start_with_env(
        data,
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
        &[
            ("SLUICE_RECORDING_TARGETS", &calls),
            ("SLUICE_API_TOKEN", Path::new(BOOTSTRAP)),
        ],
    )
}

#[test]
fn roles_decide_who_approves_promotes_and_forces_and_the_history_names_the_tokens_owner() {
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", PIPELINE),
            ("environments/dev.yaml", DEV),
            ("environments/staging.yaml", STAGING),
        ],
        "platform",
    );
    let merge = repo.commit(&[("README.md", "platform\n")], "Readme");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &repo);
    // The push is GitHub's sample: Codertocat wrote, committed and pushed it.
    let (status, text) = deliver(
        &server,
        "push",
        "merge-1",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    let release = wait_for("dev to run the release", Duration::from_secs(60), || {
        get(&server, "/api/status")
            .as_array()?
            .iter()
            .find(|environment| environment["environment"] == "dev")?["release"]
            .as_str()
            .map(str::to_owned)
    });

    // `create` prints the token once, on stdout; `list` never shows it.
    let alice = create_token(data.path(), "alice", "approver");
    assert!(
        alice.starts_with("sluice_") && !alice.contains(char::is_whitespace),
        "{alice}"
    );
    let victor = create_token(data.path(), "victor", "viewer");
    let author = create_token(data.path(), "Codertocat", "approver");
    let listed = sluice_ok(data.path(), &["token", "list"]);
    assert!(
        listed.contains("alice") && listed.contains("approver"),
        "{listed}"
    );
    assert!(
        !listed.contains(&alice) && !listed.contains(&alice[7..20]),
        "{listed}"
    );
    let again = sluice(
        data.path(),
        &["token", "create", "alice", "--role", "admin"],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("sluice token revoke alice"),
        "{again:?}"
    );

    let approve = serde_json::json!({ "release": release });
    refused(
        act(&server, &victor, "staging", "approve", approve.clone()),
        403,
        "approver role",
    );

    refused(
        act(
            &server,
            &alice,
            "staging",
            "approve",
            serde_json::json!({ "release": release, "actor": "mallory" }),
        ),
        400,
        "`actor` is not accepted",
    );

    refused(
        act(&server, BOOTSTRAP, "staging", "approve", approve.clone()),
        403,
        "an approval needs a person",
    );

    refused(
        act(&server, &author, "staging", "approve", approve.clone()),
        403,
        "Codertocat is the author",
    );

    let (status, answer) = act(&server, &alice, "staging", "approve", approve.clone());
    assert_eq!(status, 202, "{answer}");
    assert!(
        history(&server)
            .iter()
            .any(|entry| entry["action"] == "approve"
                && entry["actor"] == "alice"
                && entry["release"] == release.as_str()),
        "{:#?}",
        history(&server)
    );

    // Approved, but staging soaks for 30 minutes after dev: the request waits and says why.
    let (status, answer) = act(&server, &alice, "staging", "promote", approve.clone());
    assert_eq!(status, 202, "{answer}");
    let held = wait_for(
        "the request to be held by the soak",
        Duration::from_secs(30),
        || {
            history(&server).into_iter().find(|entry| {
                entry["action"] == "gate"
                    && entry["outcome"] == "blocked"
                    && entry["actor"] == "alice"
            })
        },
    );
    let reason = held["reason"].as_str().unwrap();
    assert!(
        reason.contains("soaking") && reason.contains("--force --reason TEXT"),
        "{reason}"
    );
    refused(
        act(
            &server,
            &alice,
            "staging",
            "promote",
            serde_json::json!({ "release": release, "force": true, "reason": "hotfix" }),
        ),
        403,
        "admin role",
    );
    let (status, answer) = act(
        &server,
        BOOTSTRAP,
        "staging",
        "promote",
        serde_json::json!({ "release": release, "force": true }),
    );
    assert_ne!(status, 202, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("--reason"),
        "{answer}"
    );
    let (status, answer) = act(
        &server,
        BOOTSTRAP,
        "staging",
        "promote",
        serde_json::json!({ "release": release, "force": true, "reason": "incident 42 needs the fix" }),
    );
    assert_eq!(status, 202, "{answer}");
    let skipped = wait_for("the forced promotion", Duration::from_secs(30), || {
        history(&server)
            .into_iter()
            .find(|entry| entry["action"] == "gate" && entry["outcome"] == "skipped")
    });
    assert_eq!(skipped["actor"], "api-token");
    let reason = skipped["reason"].as_str().unwrap();
    assert!(
        reason.contains("incident 42 needs the fix") && reason.contains("soak: soaking"),
        "{reason}"
    );
    wait_for(
        "staging to run the release",
        Duration::from_secs(30),
        || {
            history(&server)
                .iter()
                .any(|entry| entry["action"] == "manual" && entry["outcome"] == "succeeded")
                .then_some(())
        },
    );

    // Expired and revoked tokens are refused, each saying so.
    let store = SqliteStore::open(&data.path().join("sluice.db")).unwrap();
    let expired = "sluice_expired-for-the-test";
    store
        .insert_api_token(&NewApiToken {
            name: "olga".into(),
            role: Role::Admin,
            sha256: token_sha256(expired),
            created_at: 0,
            expires_at: Some(Utc::now().timestamp() - 60),
        })
        .unwrap();
    refused(
        act(&server, expired, "staging", "approve", approve.clone()),
        401,
        "expired",
    );
    sluice_ok(data.path(), &["token", "revoke", "alice"]);
    refused(
        act(&server, &alice, "staging", "approve", approve),
        401,
        "revoked",
    );
    let listed = sluice_ok(data.path(), &["token", "list"]);
    let alice_line = listed
        .lines()
        .find(|line| line.starts_with("alice"))
        .unwrap();
    // Name, role, created (date and time), no expiry, revoked and last used (each date and time).
    let words: Vec<&str> = alice_line.split_whitespace().collect();
    assert_eq!((words.len(), words[4]), (9, "-"), "{listed}");
}

#[test]
fn locks_are_listed_with_holder_age_and_queue_and_only_an_admin_releases_one_leaving_the_queue() {
    let repo = TestRepo::new();
    repo.commit(&[("workflows/ci.yaml", PIPELINE)], "ci");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &repo);
    let store = SqliteStore::open(&data.path().join("sluice.db")).unwrap();
    let target = TerraformTarget {
        repository: REPOSITORY.into(),
        environment: "production".into(),
        dir: "infra/production".into(),
    };
    let take = |pull_request: u64| {
        store
            .acquire_terraform_lock(&LockRequest {
                target: target.clone(),
                holder: locks::holder(Some(pull_request), ""),
                now: Utc::now() - chrono::Duration::minutes(90),
                lease: locks::DEFAULT_LEASE,
                queue: true,
            })
            .unwrap()
    };
    assert!(matches!(take(12), LockOutcome::Acquired { .. }));
    assert!(matches!(take(13), LockOutcome::Queued { position: 1, .. }));

    let listed = get(&server, "/api/locks");
    let lock = &listed[0];
    assert_eq!(lock["environment"], "production");
    assert_eq!(lock["holder"]["pull_request"], 12);
    assert_eq!(lock["holder"]["label"], "pull request #12");
    assert!(lock["age_seconds"].as_i64().unwrap() >= 90 * 60, "{lock}");
    assert_eq!(lock["queue"][0]["pull_request"], 13);
    let text = sluice_ok(data.path(), &["locks"]);
    assert!(
        text.contains("pull request #12")
            && text.contains("1h30m")
            && text.contains("queued 1: pull request #13"),
        "{text}"
    );

    let approver = create_token(data.path(), "alice", "approver");
    let admin = create_token(data.path(), "ada", "admin");
    let unlock = |token: &str, query: &str| {
        let response = http()
            .delete(server.url(&format!("/api/locks/{REPOSITORY}/production{query}")))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    refused(unlock(&approver, ""), 403, "admin role");
    refused(
        unlock(&admin, "?dir=infra/elsewhere"),
        404,
        "no terraform lock",
    );
    let (status, answer) = unlock(&admin, "?pull_request=12");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["released_by"], "ada");
    assert_eq!(get(&server, "/api/locks"), serde_json::json!([]));
    // The queue stays: pull request #13 is still first in line, so #14 does not get the lock.
    let fourteen = store
        .acquire_terraform_lock(&LockRequest {
            target: target.clone(),
            holder: locks::holder(Some(14), ""),
            now: Utc::now(),
            lease: locks::DEFAULT_LEASE,
            queue: false,
        })
        .unwrap();
    assert!(
        matches!(&fourteen, LockOutcome::Held { by } if by.holder.pull_request == Some(13)),
        "{fourteen:?}"
    );
    let (status, _) = unlock(&admin, "");
    assert_eq!(status, 404);
}
