//! Kubernetes drift benchmark against the in-process fake API server: 1,000 objects (400
//! ConfigMaps, 200 Services, 200 Deployments, 200 Secrets) deployed by sluice, then drifted
//! behind its back through the API (3 Deployments scaled by `kubectl-scale`, 2 ConfigMaps edited
//! by `kubectl-edit`, 1 ConfigMap deleted, 1 labelled ConfigMap added). Times sluice's drift check
//! (a fresh target each run, so discovery is included) next to `kubectl diff --server-side
//! --field-manager=sluice --force-conflicts` on the same rendered manifests against the same fake
//! (a fresh discovery cache each run), and counts the API calls of each, LISTs per kind included.
//! kubectl is `SLUICE_KUBECTL` or the one on `PATH` (scripts/setup-kubectl.sh installs one); without
//! it only sluice is measured. Run with `cargo bench --bench drift_kubernetes`.

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Release, Target};
use sluice::targets::kubernetes::fake::{CallCounts, FakeApiServer, spawn_fake_api_server};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget, kubectl_binary};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use table::{milliseconds, print_table};

const OBJECTS_PER_FILE: usize = 50;
const RUNS: usize = 5;

fn object(index: usize) -> String {
    match index % 5 {
        0 | 1 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config-{index}}}\ndata: {{value: original, index: \"{index}\"}}\n"
        ),
        2 => format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: service-{index}}}\nspec:\n  selector: {{app: app-{index}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
        ),
        3 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{index}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{index}}}}}\n  template:\n    metadata: {{labels: {{app: app-{index}}}}}\n    spec:\n      containers: [{{name: app, image: 'registry.local/app:1.{index}'}}]\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: secret-{index}}}\nstringData: {{token: value-{index}}}\n"
        ),
    }
}

fn write_manifests(directory: &Path) {
    std::fs::create_dir_all(directory).unwrap();
    for file_index in 0..1000 / OBJECTS_PER_FILE {
        let mut text = String::new();
        for index in file_index * OBJECTS_PER_FILE..(file_index + 1) * OBJECTS_PER_FILE {
            let _ = writeln!(text, "---\n{}", object(index));
        }
        std::fs::write(
            directory.join(format!("objects-{file_index:02}.yaml")),
            text,
        )
        .unwrap();
    }
}

fn release() -> Release {
    let commit = format!("{:0>40}", 1);
    Release {
        id: Release::new_id(1, &commit),
        sequence: 1,
        ..Release::unrecorded("bench/platform", &commit, "main", None)
    }
}

/// Drifts the deployed objects through the API as other tools would: 7 drifts in 7 objects.
async fn drift_behind_sluices_back(client: &kube::Client) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "bench");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let by = |manager: &str| PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    };
    for index in [3, 503, 998] {
        deployments
            .patch(
                &format!("app-{index}"),
                &by("kubectl-scale"),
                &Patch::Merge(json!({"spec": {"replicas": 4}})),
            )
            .await
            .unwrap();
    }
    for index in [0, 501] {
        config_maps
            .patch(
                &format!("config-{index}"),
                &by("kubectl-edit"),
                &Patch::Merge(json!({"data": {"value": "edited"}})),
            )
            .await
            .unwrap();
    }
    config_maps
        .delete("config-250", &DeleteParams::default())
        .await
        .unwrap();
    let stray: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "stray", "labels": {
        "app.kubernetes.io/managed-by": "sluice", "sluice.dev/environment": "bench"}}}))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &stray)
        .await
        .unwrap();
}

/// The manifests sluice applies, as files kubectl reads: one `List` per 50 objects.
fn write_rendered(directory: &Path, objects: &[Value]) {
    std::fs::create_dir_all(directory).unwrap();
    for (index, chunk) in objects.chunks(OBJECTS_PER_FILE).enumerate() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": chunk});
        std::fs::write(
            directory.join(format!("rendered-{index:02}.json")),
            list.to_string(),
        )
        .unwrap();
    }
}

struct Measured {
    times: Vec<Duration>,
    calls: CallCounts,
    lists: BTreeMap<String, u64>,
    outcome: String,
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn kubectl_version(kubectl: &Path) -> Option<String> {
    let output = std::process::Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or_default().to_owned())
}

async fn run_kubectl(
    kubectl: &Path,
    kubeconfig: &Path,
    manifests: &Path,
    cache: &Path,
) -> (Duration, String) {
    let mut command = std::process::Command::new(kubectl);
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args([
            "diff",
            "--server-side",
            "--field-manager=sluice",
            "--force-conflicts",
            "-f",
        ])
        .arg(manifests);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run kubectl");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let changed_objects = stdout
        .lines()
        .filter(|line| line.starts_with("diff -u -N"))
        .count();
    let outcome = match output.status.code() {
        Some(0) => "exit 0: no differences".to_owned(),
        Some(1) => format!("exit 1: {changed_objects} objects differ"),
        code => format!(
            "exit {code:?}: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
    };
    (elapsed, outcome)
}

fn row(tool: &str, measured: &Measured) -> Vec<String> {
    let calls = measured.calls;
    vec![
        tool.to_owned(),
        milliseconds(median(&measured.times)),
        calls.list.to_string(),
        measured
            .lists
            .values()
            .max()
            .copied()
            .unwrap_or(0)
            .to_string(),
        calls.get.to_string(),
        calls.dry_run.to_string(),
        calls.discovery.to_string(),
        calls.writes().to_string(),
        measured.outcome.clone(),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("{}", machine::describe());
    let (url, fake) = spawn_fake_api_server().await;
    let tree = tempfile::tempdir().unwrap();
    write_manifests(&tree.path().join("k8s"));
    let environment: Environment = serde_json::from_value(json!({
        "name": "bench",
        "kubernetes": {"namespace": "bench", "manifests": "k8s", "prune": true},
    }))
    .unwrap();
    let new_target = || {
        let options = KubernetesOptions {
            api_server: Some(url.clone()),
            ..KubernetesOptions::default()
        };
        KubernetesTarget::new(&environment, options)
            .unwrap()
            .unwrap()
    };
    let context = DeployContext {
        environment: environment.clone(),
        release: release(),
        tree: tree.path().to_path_buf(),
        previous: None,
        applied: Default::default(),
    };
    new_target().apply(&context).await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(
        url.as_str().trim_end_matches('/').parse().unwrap(),
    ))
    .unwrap();
    drift_behind_sluices_back(&client).await;

    let sluice = measure_sluice(&fake, &new_target, &context).await;
    let mut rows = vec![row("sluice drift", &sluice)];
    let kubectl = kubectl_binary();
    let mut kubectl_measured = None;
    match kubectl_version(&kubectl) {
        Some(version) => {
            println!("kubectl: {} ({version})", kubectl.display());
            let rendered: Vec<Value> = new_target()
                .render(&context)
                .unwrap()
                .into_iter()
                .map(|object| {
                    let mut manifest = object.manifest;
                    if object.kind != "Namespace" {
                        manifest["metadata"]["namespace"] = json!("bench");
                    }
                    manifest
                })
                .collect();
            write_rendered(&tree.path().join("rendered"), &rendered);
            let kubeconfig = tree.path().join("kubeconfig");
            std::fs::write(
                &kubeconfig,
                format!(
                    "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: '{}'}}}}]\nusers: [{{name: fake, user: {{}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: bench}}}}]\ncurrent-context: fake\n",
                    url.as_str().trim_end_matches('/')
                ),
            )
            .unwrap();
            let mut measured = Measured {
                times: Vec::new(),
                calls: CallCounts::default(),
                lists: BTreeMap::new(),
                outcome: String::new(),
            };
            for run in 0..RUNS {
                fake.reset_calls();
                let cache = tree.path().join(format!("kubectl-cache-{run}"));
                let (elapsed, outcome) =
                    run_kubectl(&kubectl, &kubeconfig, &tree.path().join("rendered"), &cache).await;
                measured.times.push(elapsed);
                measured.calls = fake.calls();
                measured.lists = fake.lists_per_resource();
                measured.outcome = outcome;
            }
            rows.push(row("kubectl diff --server-side", &measured));
            kubectl_measured = Some(measured);
        }
        None => println!(
            "kubectl: `{}` cannot be run; only sluice is measured (scripts/setup-kubectl.sh installs one, SLUICE_KUBECTL names it)",
            kubectl.display()
        ),
    }
    println!(
        "\n1,000 objects, 7 drifted (3 scaled, 2 edited, 1 deleted, 1 extra labelled); median of {RUNS} runs; calls of the last run\n"
    );
    print_table(
        &[
            "tool",
            "wall time",
            "LISTs",
            "max LISTs per kind",
            "GETs",
            "dry runs",
            "discovery",
            "writes",
            "found",
        ],
        &rows,
    );
    println!("\nLISTs per kind (last run)\n");
    let mut kinds: Vec<&String> = sluice.lists.keys().collect();
    if let Some(measured) = &kubectl_measured {
        kinds.extend(measured.lists.keys());
    }
    kinds.sort();
    kinds.dedup();
    let per_kind: Vec<Vec<String>> = kinds
        .into_iter()
        .map(|kind| {
            vec![
                kind.clone(),
                sluice.lists.get(kind).copied().unwrap_or(0).to_string(),
                kubectl_measured
                    .as_ref()
                    .map_or("-".to_owned(), |measured| {
                        measured.lists.get(kind).copied().unwrap_or(0).to_string()
                    }),
            ]
        })
        .collect();
    print_table(&["resource", "sluice", "kubectl"], &per_kind);
}

async fn measure_sluice(
    fake: &FakeApiServer,
    new_target: &impl Fn() -> KubernetesTarget,
    context: &DeployContext,
) -> Measured {
    let mut measured = Measured {
        times: Vec::new(),
        calls: CallCounts::default(),
        lists: BTreeMap::new(),
        outcome: String::new(),
    };
    for _ in 0..RUNS {
        let target = new_target();
        fake.reset_calls();
        let started = Instant::now();
        let report = target.drift(context).await.unwrap();
        measured.times.push(started.elapsed());
        measured.calls = fake.calls();
        measured.lists = fake.lists_per_resource();
        measured.outcome = format!("{} drifts", report.drifts.len());
    }
    measured
}
