//! Each target's section of an environment file is checked like the rest of it: a misspelt key is
//! reported at its line with the nearest valid key, and what the target would refuse at deploy
//! time (a `kind/name` that is not, a path that leaves the repository) is reported at the value.

use super::{check, files, hints};
use sluice::config::load_project;

/// An environment whose every target section is sound; each test spoils one line of it.
const SOUND: &str = "\
name: staging
after: dev
terraform:
  dir: platform/infra/envs/staging
  apply: auto
mlflow:
  tracking_uri: http://127.0.0.1:5500
  models:
    churn-classifier:
      alias: staging
      restart: [deployment/serving-api]
kubernetes:
  namespace: ml-staging
  manifests: platform/k8s/overlays/staging
  prune: true
  health:
    rollouts: [deployment/serving-api]
airflow:
  dags: platform/dags
  folder: /srv/airflow/staging/dags
  api: http://127.0.0.1:8090
  unpause: [batch_score]
";

/// `SOUND` with the line that starts with `line` (after its indentation) replaced by `with`.
fn spoiled(line: &str, with: &str) -> String {
    let mut found = false;
    let text: Vec<String> = SOUND
        .lines()
        .map(|original| {
            if original.trim_start().starts_with(line) && !found {
                found = true;
                let indentation = original.len() - original.trim_start().len();
                format!("{}{with}", &original[..indentation])
            } else {
                original.to_owned()
            }
        })
        .collect();
    assert!(found, "no line starts with `{line}`");
    text.join("\n") + "\n"
}

fn dev_and(staging: &str) -> Vec<(&'static str, String)> {
    vec![
        ("environments/dev.yaml", "name: dev\n".to_owned()),
        ("environments/staging.yaml", staging.to_owned()),
    ]
}

/// Loads dev and `staging`, asserting the diagnostics' first lines and hints.
fn check_staging(staging: &str, expected_lines: &[&str], expected_hints: &[&str]) {
    let named = dev_and(staging);
    let borrowed: Vec<(&str, &str)> = named
        .iter()
        .map(|(path, text)| (*path, text.as_str()))
        .collect();
    let project = check(&borrowed, expected_lines);
    let found = hints(&project);
    assert_eq!(found.len(), expected_hints.len(), "hints: {found:#?}");
    for (hint, expected) in found.iter().zip(expected_hints) {
        assert!(
            hint.starts_with(expected),
            "hint `{hint}` should start with `{expected}`"
        );
    }
    let loaded: Vec<&str> = project
        .environments
        .iter()
        .map(|environment| environment.value.name.as_str())
        .collect();
    assert_eq!(
        loaded,
        ["dev"],
        "an environment with a problem is not loaded"
    );
}

#[test]
fn the_sound_environment_loads_with_every_section_typed() {
    let named = dev_and(SOUND);
    let borrowed: Vec<(&str, &str)> = named
        .iter()
        .map(|(path, text)| (*path, text.as_str()))
        .collect();
    let project = check(&borrowed, &[]);
    let targets = &project.environments[1].value.targets;
    assert_eq!(
        targets.mlflow.as_ref().unwrap().models["churn-classifier"].restart,
        ["deployment/serving-api"]
    );
    assert_eq!(
        targets.airflow.as_ref().unwrap().dags.to_str(),
        Some("platform/dags")
    );
    assert!(targets.kubernetes.as_ref().unwrap().prune);
    assert_eq!(
        targets.terraform.as_ref().unwrap().dir,
        "platform/infra/envs/staging"
    );
}

#[test]
fn a_misspelt_key_in_the_terraform_section_names_the_nearest() {
    check_staging(
        &spoiled("apply:", "aply: auto"),
        &["environments/staging.yaml:5:3: unknown key `aply` in `terraform`"],
        &["did you mean `apply`? valid keys: dir, var_files,"],
    );
}

#[test]
fn a_misspelt_key_in_the_mlflow_section_names_the_nearest() {
    check_staging(
        &spoiled("alias:", "alais: staging"),
        &[
            "environments/staging.yaml:10:7: unknown key `alais` in `mlflow.models.churn-classifier`",
        ],
        &["did you mean `alias`? valid keys: alias, stage,"],
    );
}

#[test]
fn a_misspelt_key_in_the_kubernetes_section_names_the_nearest() {
    check_staging(
        &spoiled("prune:", "prun: true"),
        &["environments/staging.yaml:15:3: unknown key `prun` in `kubernetes`"],
        &["did you mean `prune`? valid keys: namespace, manifests,"],
    );
}

#[test]
fn a_misspelt_key_in_the_airflow_section_names_the_nearest() {
    check_staging(
        &spoiled("unpause:", "unpuase: [batch_score]"),
        &["environments/staging.yaml:22:3: unknown key `unpuase` in `airflow`"],
        &["did you mean `unpause`? valid keys: dags, folder,"],
    );
}

#[test]
fn a_misspelt_section_name_names_the_target() {
    check_staging(
        &spoiled("kubernetes:", "kubernets:"),
        &["environments/staging.yaml:12:1: unknown key `kubernets` in the environment"],
        &[
            "did you mean `kubernetes`? valid keys: name, after, branch, description, gates, drift, vars, terraform, ",
        ],
    );
}

#[test]
fn what_a_target_would_refuse_is_reported_at_the_value() {
    check_staging(
        &spoiled("restart:", "restart: [deployment/serving-api, serving-api]"),
        &[
            "environments/staging.yaml:11:41: `mlflow.models.churn-classifier.restart[1]` in environment `staging`: `serving-api` is not `kind/name`",
        ],
        &["write e.g. `deployment/serving-api`"],
    );
    check_staging(
        &spoiled("rollouts:", "rollouts: [serving-api]"),
        &[
            "environments/staging.yaml:17:16: `kubernetes.health.rollouts[0]` in environment `staging`: `serving-api` is not `kind/name`",
        ],
        &["write e.g. `deployment/serving-api`"],
    );
    check_staging(
        &spoiled("dir:", "dir: ../elsewhere"),
        &[
            "environments/staging.yaml:4:8: `terraform.dir` in environment `staging`: `../elsewhere` leaves the repository",
        ],
        &["write a path relative to the repository root without `..`"],
    );
    check_staging(
        &spoiled("api:", "# no api"),
        &[
            "environments/staging.yaml:22:12: `airflow.unpause` in environment `staging`: needs `airflow.api` to reach Airflow",
        ],
        &["add `api:`"],
    );
    check_staging(
        &spoiled("tracking_uri:", "tracking_uri: ftp://models"),
        &[
            "environments/staging.yaml:7:17: `mlflow.tracking_uri` in environment `staging`: `ftp://models` is not an http(s) URL",
        ],
        &["write e.g. `http://127.0.0.1:5000`"],
    );
}

#[test]
fn every_problem_in_every_section_is_reported_in_one_pass() {
    let text = spoiled("prune:", "prun: true")
        .replace("apply: auto", "aply: auto")
        .replace("dags: platform/dags", "dag: platform/dags");
    let project = load_project(&files(&[
        ("environments/dev.yaml", "name: dev\n"),
        ("environments/staging.yaml", &text),
    ]));
    let lines: Vec<String> = project
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.to_string().lines().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "environments/staging.yaml:5:3: unknown key `aply` in `terraform`",
            "environments/staging.yaml:15:3: unknown key `prun` in `kubernetes`",
            "environments/staging.yaml:18:1: missing required key `dags` in `airflow`",
            "environments/staging.yaml:19:3: unknown key `dag` in `airflow`",
        ]
    );
}

/// `sluice validate` itself, on a copy of this repository's environments with one key misspelt.
#[test]
fn sluice_validate_reports_a_misspelt_target_key_with_file_line_and_suggestion() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("environments")).unwrap();
    for name in ["dev", "staging", "production"] {
        let text = std::fs::read_to_string(root.join(format!("environments/{name}.yaml"))).unwrap();
        let text = if name == "staging" {
            text.replace("  prune: true\n", "  prnue: true\n")
        } else {
            text
        };
        std::fs::write(
            directory.path().join(format!("environments/{name}.yaml")),
            text,
        )
        .unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .arg(directory.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let staging = std::fs::read_to_string(root.join("environments/staging.yaml")).unwrap();
    let line = staging
        .lines()
        .position(|line| line == "  prune: true")
        .unwrap()
        + 1;
    assert!(
        stdout.starts_with(&format!(
            "environments/staging.yaml:{line}:3: unknown key `prnue` in `kubernetes`\n  hint: did you mean `prune`?"
        )),
        "{stdout}"
    );
}
