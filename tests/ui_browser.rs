//! The web UI in a real browser against a real `sluice serve`: a merge promoted to production's
//! approval gate, and a training run whose job logs a line each time the test asks. The log
//! grows on screen without a reload; production shows that it waits for approval, and an approval
//! given elsewhere appears on the board without a reload; the release's
//! author is refused with the reason; an approver's click moves production on and the history
//! names them. Every page is screenshotted (and must not be blank) and passes basic
//! accessibility checks. Prints the time from a log line written to it appearing on screen.

#[path = "support/browser.rs"]
mod browser;
mod support;

use browser::{accessibility_problems, eventually, screenshot, text_of};
use fantoccini::{Client, Locator};
use sluice::deploy::recording::RecordingTarget;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

const CI: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
const DEV: &str = "name: dev\nterraform: { dir: infra/dev }\nkubernetes: { namespace: ml-dev, manifests: k8s }\nairflow: { dags: dags, folder: /srv/airflow/dev/dags }\n";
const STAGING: &str =
    "name: staging\nafter: dev\nkubernetes: { namespace: ml-staging, manifests: k8s }\n";
const PRODUCTION: &str = "name: production\nafter: staging\ngates: { approvals: 2 }\nkubernetes: { namespace: ml-prod, manifests: k8s }\n";
const SERVER_CONFIG: &str = "promotion: { interval: 200ms, health-poll: 50ms }\n";
/// Lines the training job logs, one per file the test writes; each carries when it was written.
const LINES: usize = 20;

/// A pipeline on branch `train` whose job prints `epoch N written at MILLIS` when `line-N`
/// appears in `gate`, until it is cancelled (or `stop` appears).
fn training_pipeline(gate: &Path) -> String {
    let gate = gate.display();
    format!(
        "name: training\non: {{ push: {{ branches: [train] }} }}\njobs:\n  train:\n    steps:\n      - name: train the model\n        run: |\n          i=0\n          echo \"waiting for epochs\"\n          while [ ! -e {gate}/stop ]; do\n            if [ -e {gate}/line-$((i+1)) ]; then i=$((i+1)); echo \"epoch $i written at $(date +%s%3N)\"; fi\n            sleep 0.01\n          done\n"
    )
}

struct Setup {
    server: Server,
    data: tempfile::TempDir,
    gate: PathBuf,
    shots: PathBuf,
    release: String,
    author_token: String,
    approver_token: String,
}

fn set_up() -> Setup {
    let data = tempfile::tempdir().unwrap();
    let gate = data.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    // The job may run as an unprivileged user: it only needs to read the gate.
    for dir in [data.path(), gate.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let repo = TestRepo::new();
    let base = repo.commit(
        &[
            ("workflows/ci.yaml", CI),
            ("workflows/training.yaml", &training_pipeline(&gate)),
            ("environments/dev.yaml", DEV),
            ("environments/staging.yaml", STAGING),
            ("environments/production.yaml", PRODUCTION),
            ("dags/train.py", "# a DAG\n"),
        ],
        "platform",
    );
    let merge = repo.commit(&[("dags/train.py", "# a better DAG\n")], "Retrain nightly");
    repo.git(&["branch", "train"]);
    let calls = data.path().join("calls");
    std::fs::create_dir_all(&calls).unwrap();
    let config = data.path().join("server.yaml");
    std::fs::write(&config, SERVER_CONFIG).unwrap();
    let server = Server::start_with_env(
        &data.path().join("server"),
        &[format!("{REPOSITORY}={}", repo.path().display())],
        &["--config", config.to_str().unwrap()],
        &[("SLUICE_RECORDING_TARGETS", &calls)],
    );
    let server_data = data.path().join("server");
    let create_token = |name: &str, role: &str| {
        sluice_ok(&server_data, &["token", "create", name, "--role", role])
            .trim()
            .to_owned()
    };
    // The push payload's pusher is Codertocat: the release's author.
    let author_token = create_token("Codertocat", "approver");
    let approver_token = create_token("alice", "approver");
    let (status, text) = deliver(
        &server,
        "push",
        "merge-1",
        &push_payload("main", &base, &merge),
    );
    assert_eq!(status, 202, "{text}");
    let (status, text) = deliver(
        &server,
        "push",
        "train-1",
        &push_payload("train", &"0".repeat(40), &merge),
    );
    assert_eq!(status, 202, "{text}");
    wait_for(
        "production to wait for approval",
        Duration::from_secs(90),
        || {
            let status = sluice(&server_data, &["status"]);
            printed(&status).contains("0 of 2 approvals").then_some(())
        },
    );
    let releases = sluice_ok(&server_data, &["releases"]);
    let release = releases
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = RecordingTarget::calls(&calls);
    Setup {
        server,
        data,
        gate,
        shots,
        release,
        author_token,
        approver_token,
    }
}

async fn sign_in(client: &Client, base: &str, token: &str) {
    client
        .goto(&format!("{base}/signin?next=/environments"))
        .await
        .unwrap();
    let field = client.find(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    client
        .find(Locator::Css("form.signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the board after signing in",
        Duration::from_secs(10),
        || async {
            text_of(client, "#whoami")
                .await
                .filter(|text| text.starts_with("Signed in as"))
        },
    )
    .await;
}

async fn sign_out(client: &Client) {
    client
        .find(Locator::Css("header form[action='/signout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("signed out", Duration::from_secs(10), || async {
        text_of(client, "#whoami")
            .await
            .filter(|text| text.contains("guest"))
    })
    .await;
}

/// Clicks the element with `id` and waits until the page's main part says `expected`; its text.
async fn click_and_read(client: &Client, id: &str, expected: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        &format!("`{expected}` after clicking {id}"),
        Duration::from_secs(10),
        || async {
            text_of(client, "main")
                .await
                .filter(|text| text.contains(expected))
        },
    )
    .await
}

/// Loads `url` again until the text of `css` satisfies `done`.
async fn reload_until(
    client: &Client,
    url: &str,
    css: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    eventually(what, Duration::from_secs(60), || async {
        client.goto(url).await.ok()?;
        let text = text_of(client, css).await?;
        done(&text).then_some(())
    })
    .await
}

async fn check_page(client: &Client, shots: &Path, name: &str) {
    screenshot(client, shots, name).await;
    let problems = accessibility_problems(client).await;
    assert!(problems.is_empty(), "{name}: {problems:#?}");
}

/// Writes `line-N` and waits until the browser shows epoch N; the milliseconds between the
/// line's writing and its appearing, as the page measured them.
async fn one_line(client: &Client, gate: &Path, n: usize) -> f64 {
    std::fs::write(gate.join(format!("line-{n}")), "").unwrap();
    eventually(
        &format!("epoch {n} on screen"),
        Duration::from_secs(20),
        || async {
            let answer = client
                .execute(
                    "return window.__lag ? window.__lag[arguments[0]] : null;",
                    vec![serde_json::json!(n.to_string())],
                )
                .await
                .ok()?;
            answer.as_f64()
        },
    )
    .await
}

const WATCH_LOG: &str = r#"
    window.__lag = {};
    window.__loaded = performance.timeOrigin;
    const log = document.getElementById('log');
    new MutationObserver(() => {
        for (const match of log.textContent.matchAll(/epoch (\d+) written at (\d+)/g)) {
            if (!(match[1] in window.__lag)) window.__lag[match[1]] = Date.now() - Number(match[2]);
        }
    }).observe(log, { childList: true, subtree: true, characterData: true });
"#;

#[test]
fn the_ui_follows_a_run_live_and_a_person_approves_production_from_the_board() {
    let Some(driver) = browser::driver() else {
        return;
    };
    let setup = set_up();
    let base = setup.server.base_url.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser::browser(&driver).await;

        // The runs page lists both runs; the training run's job is running.
        client.goto(&format!("{base}/?branch=train")).await.unwrap();
        let run_link = eventually("the training run", Duration::from_secs(30), || async {
            let link = client.find(Locator::Css("#runs tbody a")).await.ok()?;
            link.attr("href").await.ok().flatten()
        })
        .await;
        client.goto(&format!("{base}/")).await.unwrap();
        check_page(&client, &setup.shots, "runs").await;

        // The running job's log grows on screen, without a reload.
        client
            .goto(&format!("{base}{run_link}?job=train"))
            .await
            .unwrap();
        eventually("the job to start", Duration::from_secs(30), || async {
            text_of(&client, "#log")
                .await
                .filter(|text| text.contains("waiting for epochs"))
        })
        .await;
        client.execute(WATCH_LOG, vec![]).await.unwrap();
        let loaded = client
            .execute("return window.__loaded;", vec![])
            .await
            .unwrap();
        let mut lags = Vec::new();
        for n in 1..=LINES {
            lags.push(one_line(&client, &setup.gate, n).await);
        }
        let still = client
            .execute("return window.__loaded;", vec![])
            .await
            .unwrap();
        assert_eq!(loaded, still, "the page was not reloaded");
        let log = text_of(&client, "#log").await.unwrap();
        assert!(log.contains(&format!("epoch {LINES} written at")), "{log}");
        lags.sort_by(f64::total_cmp);
        println!(
            "log line written -> on screen: median {} ms, min {} ms, max {} ms over {LINES} lines",
            lags[LINES / 2],
            lags[0],
            lags[LINES - 1]
        );
        check_page(&client, &setup.shots, "run").await;

        // Production waits for an approval; a guest sees the board but no approve button.
        client.goto(&format!("{base}/environments")).await.unwrap();
        let production = text_of(&client, "#env-production").await.unwrap();
        assert!(production.contains("waiting for approval"), "{production}");
        assert!(
            client
                .find(Locator::Id("approve-production"))
                .await
                .is_err()
        );
        check_page(&client, &setup.shots, "environments").await;

        // The board follows promotion live: bob approves on the command line, and his
        // approval shows up without a reload.
        let loaded = client
            .execute("return performance.timeOrigin;", vec![])
            .await
            .unwrap();
        let server_data = setup.server.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            sluice_ok(&server_data, &["approve", "production", "--as", "bob"])
        })
        .await
        .unwrap();
        eventually(
            "bob's approval on the board",
            Duration::from_secs(20),
            || async {
                text_of(&client, "#env-production")
                    .await
                    .filter(|text| text.contains("approved by bob"))
            },
        )
        .await;
        let still = client
            .execute("return performance.timeOrigin;", vec![])
            .await
            .unwrap();
        assert_eq!(loaded, still, "the board was not reloaded");

        // The release's author is refused, with the reason.
        sign_in(&client, &base, &setup.author_token).await;
        let refusal = click_and_read(&client, "approve-production", "cannot approve").await;
        assert!(refusal.contains("Codertocat is the author of"), "{refusal}");
        check_page(&client, &setup.shots, "refused").await;
        sign_out(&client).await;

        // An approver's click moves production on; the history names them.
        sign_in(&client, &base, &setup.approver_token).await;
        click_and_read(&client, "approve-production", "alice approved").await;
        let board = format!("{base}/environments");
        reload_until(
            &client,
            &board,
            "#env-production",
            "production to run the release",
            |text| text.contains(&setup.release) && !text.contains("waiting for approval"),
        )
        .await;
        check_page(&client, &setup.shots, "environments-after").await;
        client
            .goto(&format!("{base}/history?environment=production"))
            .await
            .unwrap();
        let history = text_of(&client, "#history").await.unwrap();
        assert!(
            history.contains("approve") && history.contains("alice"),
            "{history}"
        );
        check_page(&client, &setup.shots, "history").await;

        // The approver cancels the training run, still running: the dispatcher stops its job.
        let run_page = format!("{base}{run_link}");
        client.goto(&run_page).await.unwrap();
        click_and_read(&client, "cancel", "alice asked to cancel").await;
        reload_until(
            &client,
            &run_page,
            "#job-train",
            "the job cancelled",
            |text| text.contains("cancelled"),
        )
        .await;
        let title = text_of(&client, "h1").await.unwrap();
        assert!(title.contains("cancelled"), "{title}");
        let heading = text_of(&client, "#log-heading").await.unwrap();
        assert!(
            !heading.contains("live"),
            "a finished job's log is not live: {heading}"
        );

        client
            .goto(&format!("{base}/releases/{}", setup.release))
            .await
            .unwrap();
        check_page(&client, &setup.shots, "release").await;
        client
            .goto(&format!("{base}/metrics/delivery"))
            .await
            .unwrap();
        check_page(&client, &setup.shots, "delivery").await;
        client.close().await.unwrap();
    });
    println!("screenshots in {}", setup.shots.display());
    drop(setup.data);
}
