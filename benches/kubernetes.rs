//! Kubernetes target benchmark against the in-process fake API server: 1,000 objects (400
//! ConfigMaps, 200 Services, 200 Deployments, 200 Secrets) in one manifest directory. Three
//! passes: the first sync (every object written), an unchanged re-sync (target: 0 writes and at
//! most one LIST per kind) and a sync with 10 changed objects (target: 10 writes). Reports wall
//! time and API calls per verb. Run with `cargo bench --bench kubernetes`.

#[path = "common/machine.rs"]
mod machine;
#[path = "common/table.rs"]
mod table;

use serde_json::json;
use sluice::config::environment::Environment;
use sluice::deploy::{DeployContext, Release, Target};
use sluice::targets::kubernetes::fake::{CallCounts, spawn_fake_api_server};
use sluice::targets::kubernetes::{KubernetesOptions, KubernetesTarget};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;
use table::{milliseconds, print_table};

const OBJECTS_PER_FILE: usize = 50;

fn object(index: usize, changed: bool) -> String {
    let value = if changed { "changed" } else { "original" };
    match index % 5 {
        0 | 1 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config-{index}}}\ndata: {{value: {value}, index: \"{index}\"}}\n"
        ),
        2 => format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: service-{index}, annotations: {{note: {value}}}}}\nspec:\n  selector: {{app: app-{index}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
        ),
        3 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{index}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{index}}}}}\n  template:\n    metadata: {{labels: {{app: app-{index}}}, annotations: {{note: {value}}}}}\n    spec:\n      containers: [{{name: app, image: 'registry.local/app:1.{index}'}}]\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: secret-{index}}}\nstringData: {{token: {value}-{index}}}\n"
        ),
    }
}

/// Writes 1,000 objects; those with an index in `changed` get a different value.
fn write_manifests(directory: &Path, changed: &[usize]) {
    let _ = std::fs::remove_dir_all(directory);
    std::fs::create_dir_all(directory).unwrap();
    for file_index in 0..1000 / OBJECTS_PER_FILE {
        let mut text = String::new();
        for index in file_index * OBJECTS_PER_FILE..(file_index + 1) * OBJECTS_PER_FILE {
            let _ = writeln!(text, "---\n{}", object(index, changed.contains(&index)));
        }
        std::fs::write(
            directory.join(format!("objects-{file_index:02}.yaml")),
            text,
        )
        .unwrap();
    }
}

fn release(sequence: i64) -> Release {
    let commit = format!("{sequence:0>40}");
    Release {
        id: Release::new_id(sequence, &commit),
        repository: "bench/platform".into(),
        commit,
        branch: "main".into(),
        author: None,
        created_at: 0,
        sequence,
        images: BTreeMap::new(),
        plans: BTreeMap::new(),
        dag_tree: None,
        models: BTreeMap::new(),
        config_commit: None,
        contributors: Default::default(),
    }
}

fn row(
    pass: &str,
    elapsed: std::time::Duration,
    calls: CallCounts,
    max_lists_per_kind: u64,
    summary: &str,
) -> Vec<String> {
    vec![
        pass.to_owned(),
        milliseconds(elapsed),
        calls.writes().to_string(),
        calls.list.to_string(),
        max_lists_per_kind.to_string(),
        calls.get.to_string(),
        calls.discovery.to_string(),
        summary.to_owned(),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("{}", machine::describe());
    let (url, fake) = spawn_fake_api_server().await;
    let tree = tempfile::tempdir().unwrap();
    let environment: Environment = serde_json::from_value(json!({
        "name": "bench",
        "kubernetes": {"namespace": "bench", "manifests": "k8s", "prune": true},
    }))
    .unwrap();
    let options = KubernetesOptions {
        api_server: Some(url),
        ..KubernetesOptions::default()
    };
    let target = KubernetesTarget::new(&environment, options)
        .unwrap()
        .unwrap();
    let context = |sequence| DeployContext {
        environment: environment.clone(),
        release: release(sequence),
        tree: tree.path().to_path_buf(),
        previous: None,
        applied: Default::default(),
    };
    let mut rows = Vec::new();
    let passes: [(&str, Vec<usize>); 3] = [
        ("first sync (1,000 objects)", vec![]),
        ("unchanged re-sync", vec![]),
        ("10 changed", (0..10).map(|step| step * 97).collect()),
    ];
    for (sequence, (pass, changed)) in passes.into_iter().enumerate() {
        write_manifests(&tree.path().join("k8s"), &changed);
        fake.reset_calls();
        let started = Instant::now();
        let applied = target.apply(&context(sequence as i64 + 1)).await.unwrap();
        let elapsed = started.elapsed();
        let max_lists = fake
            .lists_per_resource()
            .values()
            .copied()
            .max()
            .unwrap_or(0);
        rows.push(row(
            pass,
            elapsed,
            fake.calls(),
            max_lists,
            &applied.summary,
        ));
    }
    print_table(
        &[
            "pass",
            "wall time",
            "writes",
            "LISTs",
            "max LISTs per kind",
            "GETs",
            "discovery",
            "summary",
        ],
        &rows,
    );
}
