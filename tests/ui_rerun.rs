//! Re-running from the web UI against a real server: a merge whose pipeline failed cuts no
//! release; a person signs in, re-runs it from the run page once the flaky cause is gone, and
//! the new run's success cuts the release.

mod support;

use reqwest::blocking::Client;
use reqwest::header::COOKIE;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::*;

const DEV: &str = "name: dev\nkubernetes: { namespace: ml-dev, manifests: k8s }\n";

#[test]
fn a_failed_merge_run_re_run_to_success_from_its_page_cuts_the_release() {
    let data = tempfile::tempdir().unwrap();
    let gate = data.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    for dir in [data.path(), gate.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The check fails until the gate holds `fixed`: a flaky dependency, say.
    let pipeline = format!(
        "name: ci\non: {{ push: {{ branches: [main] }} }}\njobs:\n  check:\n    steps:\n      - run: test -e {}/fixed\n",
        gate.display()
    );
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", &pipeline),
            ("environments/dev.yaml", DEV),
        ],
        "platform",
    );
    let merge = repo.commit(&[("k8s/app.yaml", "kind: ConfigMap\n")], "Add the app");
    let server_data = data.path().join("server");
    let server = Server::start(&server_data, repo.path());
    let token = sluice_ok(
        &server_data,
        &["token", "create", "alice", "--role", "approver"],
    )
    .trim()
    .to_owned();
    let (status, text) = deliver(
        &server,
        "push",
        "merge-1",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    let first = wait_for("the merge's run to fail", Duration::from_secs(60), || {
        server
            .runs("")
            .into_iter()
            .find(|run| run["status"] == "failed")
    });
    let first_id = first["id"].as_i64().unwrap();
    assert!(
        printed(&sluice(&server_data, &["releases"])).contains("no releases"),
        "a failed merge cuts no release"
    );

    std::fs::write(gate.join("fixed"), "").unwrap();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = sign_in(&client, &server, &token);
    let page = client
        .get(server.url(&format!("/runs/{first_id}")))
        .header(COOKIE, &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("Re-run"), "{page}");
    let answer = client
        .post(server.url(&format!("/runs/{first_id}/rerun")))
        .header(COOKIE, &session)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().unwrap().contains("alice asked to run"));

    let second = wait_for("the re-run to succeed", Duration::from_secs(60), || {
        server
            .runs("")
            .into_iter()
            .find(|run| run["id"].as_i64() != Some(first_id) && run["status"] == "succeeded")
    });
    assert_eq!(second["pipeline"], "ci");
    assert_eq!(second["commit"], merge.as_str());
    assert_eq!(second["event"], "merge", "the re-run is the same event");
    assert_eq!(
        server.runs("").len(),
        2,
        "only the failed pipeline ran again"
    );
    let releases = wait_for("the release", Duration::from_secs(30), || {
        let listed = printed(&sluice(&server_data, &["releases"]));
        listed.contains(&merge[..12]).then_some(listed)
    });
    assert!(releases.contains(&merge[..12]), "{releases}");
}
