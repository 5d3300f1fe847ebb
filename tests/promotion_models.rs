//! A merge that moves a model, end to end: a real `sluice serve` process promotes it through dev
//! and staging; its MLflow target moves each environment's alias on a real MLflow tracking
//! server, and its Kubernetes target, pointed with `--kubernetes-api-server` at the fake API
//! server this test runs in-process, rolls the Deployment serving the model through the
//! pod-template annotation `sluice.dev/model-<model>`. A second merge moves the model again and
//! the Deployment rolls again; a merge that leaves the model alone leaves the Deployment
//! unwritten. Skipped (with the reason) without MLflow, unless `SLUICE_REQUIRE_MLFLOW=1`.

#[path = "support/mlflow.rs"]
mod mlflow_support;
mod support;

use mlflow_support::{MlflowServer, VersionSpec};
use serde_json::Value;
use sluice::targets::kubernetes::fake::{FakeApiServer, spawn_fake_api_server};
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

const MODEL: &str = "churn-classifier";
const ANNOTATION: &str = "sluice.dev/model-churn-classifier";
/// Each environment and the namespace its objects go to, in promotion order.
const ENVIRONMENTS: [(&str, &str); 2] = [("dev", "ml-dev"), ("staging", "ml-staging")];

const PIPELINE: &str = "name: ci\non: { push: { branches: [main] } }\njobs:\n  check:\n    steps:\n      - run: 'true'\n";
const SERVER_CONFIG: &str = "promotion: { interval: 200ms, health-poll: 50ms }\n";
const MANIFESTS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: serving-api\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: serving-api}}\n  template:\n    metadata: {labels: {app: serving-api}}\n    spec:\n      containers:\n      - name: serving-api\n        image: registry.local/serving-api:1.4.0\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: serving-api\nspec:\n  selector: {app: serving-api}\n  ports: [{port: 80, targetPort: 8080}]\n";

fn environment_file(
    name: &str,
    namespace: &str,
    after: Option<&str>,
    tracking_uri: &str,
) -> String {
    let after = after
        .map(|after| format!("after: {after}\n"))
        .unwrap_or_default();
    format!(
        "name: {name}\n{after}kubernetes: {{ namespace: {namespace}, manifests: k8s }}\nmlflow:\n  tracking_uri: \"{tracking_uri}\"\n  pins: models/{name}.yaml\n  retry_backoff: 10ms\n  models:\n    {MODEL}: {{ alias: {name}, restart: [deployment/serving-api] }}\n"
    )
}

/// The environment's pins file serving `version`; staging takes only versions dev served.
fn pins(environment: &str, version: &str) -> String {
    let gates = if environment == "staging" {
        "    gates: { soak_in: dev }\n"
    } else {
        ""
    };
    format!("environment: {environment}\nmodels:\n  {MODEL}:\n    version: {version}\n{gates}")
}

fn pin_files(version: &str) -> Vec<(String, String)> {
    ENVIRONMENTS
        .iter()
        .map(|(environment, _)| {
            (
                format!("models/{environment}.yaml"),
                pins(environment, version),
            )
        })
        .collect()
}

/// The platform repository, the server promoting its merges, and the cluster it deploys to.
/// Fields drop in order: the server stops before the fake, the runtime serving it, the repository
/// and the data directory go.
struct Platform {
    server: Server,
    fake: FakeApiServer,
    _runtime: tokio::runtime::Runtime,
    repo: TestRepo,
    data: tempfile::TempDir,
    head: String,
}

impl Platform {
    /// The repository with every environment pinned to `version`, and `sluice serve` watching it.
    fn start(mlflow: &MlflowServer, version: &str) -> Platform {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (api_server, fake) = runtime.block_on(spawn_fake_api_server());
        let repo = TestRepo::new();
        let mut files = vec![
            ("workflows/ci.yaml".to_owned(), PIPELINE.to_owned()),
            ("k8s/serving-api.yaml".to_owned(), MANIFESTS.to_owned()),
        ];
        let mut after = None;
        for (environment, namespace) in ENVIRONMENTS {
            files.push((
                format!("environments/{environment}.yaml"),
                environment_file(environment, namespace, after, &mlflow.url),
            ));
            after = Some(environment);
        }
        files.extend(pin_files(version));
        let head = repo.commit(&borrowed(&files), "platform");
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("server.yaml");
        std::fs::write(&config, SERVER_CONFIG).unwrap();
        let server = Server::start_with(
            data.path(),
            &[format!("{REPOSITORY}={}", repo.path().display())],
            &[
                "--config",
                config.to_str().unwrap(),
                "--kubernetes-api-server",
                api_server.as_str(),
            ],
        );
        Platform {
            repo,
            server,
            fake,
            _runtime: runtime,
            data,
            head,
        }
    }

    /// Commits `files` on main and delivers the push, signed, as GitHub does after a merge.
    fn merge(&mut self, files: &[(String, String)], message: &str) -> String {
        let merge = self.repo.commit(&borrowed(files), message);
        let payload = push_payload("main", &self.head, &merge);
        let delivery = format!("merge-{}", &merge[..12]);
        let (status, text) = deliver(&self.server, "push", &delivery, &payload);
        assert_eq!(status, 202, "{text}");
        self.head = merge.clone();
        merge
    }

    fn history(&self, environment: &str) -> Vec<Value> {
        http()
            .get(
                self.server
                    .url(&format!("/api/history?environment={environment}")),
            )
            .send()
            .and_then(|response| response.error_for_status())
            .and_then(|response| response.json())
            .unwrap_or_default()
    }

    /// Waits until `environment` finished deploying the release of `commit`; its id. A
    /// deployment that did not succeed fails the test with the environment's history.
    fn deployed(&self, environment: &str, commit: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let history = self.history(environment);
            let finished = history.iter().find(|entry| {
                entry["action"] == "promote"
                    && entry["outcome"] != "started"
                    && entry["release"]
                        .as_str()
                        .is_some_and(|release| release.ends_with(&commit[..12]))
            });
            if let Some(entry) = finished {
                assert_eq!(
                    entry["outcome"],
                    "succeeded",
                    "{environment} did not deploy {commit}; its history:\n{}",
                    serde_json::to_string_pretty(&history).unwrap()
                );
                return entry["release"].as_str().unwrap().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{environment} did not finish deploying {commit} within 120 s; its history:\n{}\nthe server's log:\n{}",
                serde_json::to_string_pretty(&history).unwrap(),
                std::fs::read_to_string(&self.server.stderr_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn deployment(&self, namespace: &str) -> Value {
        self.fake
            .object("Deployment", Some(namespace), "serving-api")
            .unwrap_or_else(|| panic!("no Deployment serving-api in {namespace}"))
    }

    fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

fn borrowed(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect()
}

/// The model version the Deployment's pods are annotated with.
fn served_version(deployment: &Value) -> Option<&str> {
    deployment["spec"]["template"]["metadata"]["annotations"][ANNOTATION].as_str()
}

fn generation(deployment: &Value) -> i64 {
    deployment["metadata"]["generation"].as_i64().unwrap()
}

#[test]
fn a_merge_moving_a_model_rolls_the_deployment_serving_it_and_one_that_does_not_leaves_it_alone() {
    let Some(mlflow) = mlflow_support::server() else {
        return;
    };
    let spec = || VersionSpec {
        metrics: &[("accuracy", 0.9)],
        tags: &[],
    };
    let versions = mlflow.register(MODEL, &[spec(), spec(), spec()]);
    let (v1, v2, v3) = (&versions[0], &versions[1], &versions[2]);
    for (environment, _) in ENVIRONMENTS {
        mlflow.set_alias(MODEL, environment, v1);
    }
    let mut platform = Platform::start(mlflow, v1);

    // The first merge moves every environment's alias from v1 to v2.
    let first = platform.merge(&pin_files(v2), "Serve churn-classifier v2");
    let first_release = platform.deployed("dev", &first);
    for (environment, namespace) in ENVIRONMENTS {
        assert_eq!(platform.deployed(environment, &first), first_release);
        assert_eq!(
            mlflow.alias_version(MODEL, environment).as_deref(),
            Some(v2.as_str()),
            "{environment}'s alias moved"
        );
        assert_eq!(
            mlflow.version_tag(MODEL, v2, &format!("sluice.release.{environment}")),
            Some(first_release.clone()),
            "v2 names the release that put it in {environment}"
        );
        let deployment = platform.deployment(namespace);
        assert_eq!(served_version(&deployment), Some(v2.as_str()));
    }

    // The second moves them to v3: the pod template changes, so the rollout starts again.
    let before: Vec<i64> = ENVIRONMENTS
        .iter()
        .map(|(_, namespace)| generation(&platform.deployment(namespace)))
        .collect();
    platform.fake.reset_calls();
    let second = platform.merge(&pin_files(v3), "Serve churn-classifier v3");
    let second_release = platform.deployed("dev", &second);
    for ((environment, namespace), generation_before) in ENVIRONMENTS.iter().zip(before) {
        assert_eq!(platform.deployed(environment, &second), second_release);
        assert_eq!(
            mlflow.alias_version(MODEL, environment).as_deref(),
            Some(v3.as_str())
        );
        let deployment = platform.deployment(namespace);
        assert_eq!(served_version(&deployment), Some(v3.as_str()));
        assert_eq!(
            generation(&deployment),
            generation_before + 1,
            "the Deployment in {namespace} rolls: {deployment}"
        );
    }
    let written = platform.fake.write_log();
    for (_, namespace) in ENVIRONMENTS {
        assert!(
            written.contains(&format!("apply Deployment/{namespace}/serving-api")),
            "{written:?}"
        );
        assert!(
            !written.contains(&format!("apply Service/{namespace}/serving-api")),
            "the Service did not change: {written:?}"
        );
    }

    // The third leaves the pins alone: the release deploys, the Deployment is not written.
    platform.fake.reset_calls();
    let unchanged: Vec<Value> = ENVIRONMENTS
        .iter()
        .map(|(_, namespace)| platform.deployment(namespace))
        .collect();
    let third = platform.merge(
        &[("docs/serving.md".to_owned(), "# Serving\n".to_owned())],
        "Document serving",
    );
    let third_release = platform.deployed("dev", &third);
    for ((environment, namespace), before) in ENVIRONMENTS.iter().zip(&unchanged) {
        assert_eq!(platform.deployed(environment, &third), third_release);
        assert_eq!(
            mlflow.alias_version(MODEL, environment).as_deref(),
            Some(v3.as_str())
        );
        assert_eq!(
            &platform.deployment(namespace),
            before,
            "the Deployment in {namespace} is as the second release left it"
        );
    }
    let written = platform.fake.write_log();
    assert!(
        !written.iter().any(|write| write.contains("Deployment/")),
        "no Deployment was written: {written:?}"
    );

    // What a person sees: each release carries the pins of its own commit, every release was
    // promoted successfully, and each alias move names the release that made it.
    let releases = [&first_release, &second_release, &third_release];
    let recorded: Vec<Value> = http()
        .get(platform.server.url("/api/releases"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for (release, version) in releases.iter().zip([v2, v3, v3]) {
        let models = &recorded
            .iter()
            .find(|recorded| recorded["id"] == release.as_str())
            .unwrap_or_else(|| panic!("{release} is not in {recorded:?}"))["models"];
        for (environment, _) in ENVIRONMENTS {
            assert_eq!(
                models[environment].as_str(),
                Some(pins(environment, version).trim()),
                "{release} for {environment}"
            );
        }
    }
    for (environment, _) in ENVIRONMENTS {
        let history = sluice_ok(platform.data_dir(), &["history", environment]);
        for release in releases {
            assert!(
                history.lines().any(|line| line.contains(release.as_str())
                    && line.contains("promote")
                    && line.contains("succeeded")),
                "{environment}: no successful promotion of {release} in:\n{history}"
            );
        }
        let printed = sluice_ok(
            platform.data_dir(),
            &["history", environment, "--models", "--json"],
        );
        let mut moves: Vec<(String, String, String)> = serde_json::from_str::<Vec<Value>>(&printed)
            .unwrap()
            .iter()
            .map(|entry| {
                let text = |key: &str| entry[key].as_str().unwrap_or("-").to_owned();
                (text("from_version"), text("to_version"), text("release_id"))
            })
            .collect();
        moves.sort();
        assert_eq!(
            moves,
            [
                (v1.clone(), v2.clone(), first_release.clone()),
                (v2.clone(), v3.clone(), second_release.clone()),
            ],
            "{environment}: the third release moved nothing"
        );
    }
}
