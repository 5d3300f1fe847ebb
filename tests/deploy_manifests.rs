//! The manifests under `deploy/` read as the Kubernetes types they claim to be, and say what
//! running sluice on a cluster needs: several replicas with probes, the database URL from a
//! Secret, a server configuration sluice itself accepts with the Kubernetes runner, and a Role
//! that grants the runner what it uses in the runner namespace and nothing more.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn documents() -> Vec<Value> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let kustomization = std::fs::read_to_string(directory.join("kustomization.yaml")).unwrap();
    let kustomization: Value = serde_saphyr::from_str(&kustomization).unwrap();
    let mut documents = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        let text = std::fs::read_to_string(directory.join(file))
            .unwrap_or_else(|error| panic!("deploy/{file} is listed but unreadable: {error}"));
        for part in text.split("\n---\n") {
            let value: Value = serde_saphyr::from_str(part)
                .unwrap_or_else(|error| panic!("deploy/{file} is not YAML: {error}"));
            documents.push(value);
        }
    }
    documents
}

fn one<T: serde::de::DeserializeOwned>(documents: &[Value], kind: &str, name: &str) -> T {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|document| document["kind"] == kind && document["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} named {name} in deploy/");
    serde_json::from_value(found[0].clone())
        .unwrap_or_else(|error| panic!("{kind} {name} does not read as a {kind}: {error}"))
}

#[test]
fn every_manifest_reads_as_its_kind() {
    let documents = documents();
    let kinds: BTreeSet<&str> = documents
        .iter()
        .map(|document| document["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Namespace",
    ] {
        assert!(kinds.contains(kind), "deploy/ has a {kind}");
    }
    for document in &documents {
        let typed: Result<Value, String> = match document["kind"].as_str().unwrap() {
            "Deployment" => serde_json::from_value::<Deployment>(document.clone())
                .map(|_| Value::Null)
                .map_err(|e| e.to_string()),
            "Service" => serde_json::from_value::<Service>(document.clone())
                .map(|_| Value::Null)
                .map_err(|e| e.to_string()),
            "Role" => serde_json::from_value::<Role>(document.clone())
                .map(|_| Value::Null)
                .map_err(|e| e.to_string()),
            "RoleBinding" => serde_json::from_value::<RoleBinding>(document.clone())
                .map(|_| Value::Null)
                .map_err(|e| e.to_string()),
            _ => Ok(Value::Null),
        };
        assert!(typed.is_ok(), "{}: {typed:?}", document["metadata"]["name"]);
    }
}

#[test]
fn the_server_runs_replicated_with_probes_and_the_database_from_a_secret() {
    let documents = documents();
    let deployment: Deployment = one(&documents, "Deployment", "sluice");
    let spec = deployment.spec.unwrap();
    assert!(spec.replicas.unwrap_or(1) > 1, "several replicas");
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|probe| probe.http_get.as_ref())
            .map(|get| get.path.clone().unwrap_or_default())
    };
    assert_eq!(path(&container.liveness_probe).as_deref(), Some("/healthz"));
    assert_eq!(path(&container.readiness_probe).as_deref(), Some("/readyz"));
    let database = container
        .env
        .iter()
        .flatten()
        .find(|variable| variable.name == "SLUICE_DATABASE_URL")
        .expect("SLUICE_DATABASE_URL is set");
    let from = database
        .value_from
        .as_ref()
        .and_then(|from| from.secret_key_ref.as_ref())
        .expect("from a Secret");
    let _: Value = one::<Value>(&documents, "Secret", &from.name);
    // `sluice serve` reads the variable itself, so the password never appears in its arguments.
    assert!(
        !container
            .args
            .iter()
            .flatten()
            .any(|arg| arg.contains("SLUICE_DATABASE_URL") || arg.starts_with("postgres"))
    );
    let service: Service = one(&documents, "Service", "sluice");
    assert_eq!(
        service.spec.unwrap().selector,
        spec.selector.match_labels,
        "the Service selects the Deployment's pods"
    );
}

#[test]
fn the_configured_server_uses_the_kubernetes_runner_and_loads() {
    let documents = documents();
    let config_map: ConfigMap = one(&documents, "ConfigMap", "sluice-config");
    let text = config_map.data.unwrap()["server.yaml"].clone();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("server.yaml");
    std::fs::write(&path, text).unwrap();
    let config = sluice::config::load_server_config(&path).unwrap_or_else(|problems| {
        panic!("deploy/config.yaml's server.yaml is invalid: {problems:?}")
    });
    assert_eq!(
        config.runner.kind,
        sluice::config::runner::RunnerKind::Kubernetes
    );
    let role: Role = one(&documents, "Role", "sluice-runner");
    assert_eq!(
        role.metadata.namespace.as_deref(),
        Some(config.runner.namespace())
    );
}

#[test]
fn the_runner_s_role_grants_what_it_uses_and_no_reading_of_secrets() {
    let documents = documents();
    let role: Role = one(&documents, "Role", "sluice-runner");
    let granted: BTreeSet<(String, String)> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .flat_map(|rule| {
            let verbs = rule.verbs.clone();
            rule.resources
                .unwrap_or_default()
                .into_iter()
                .flat_map(move |resource| {
                    verbs
                        .clone()
                        .into_iter()
                        .map(move |verb| (resource.clone(), verb))
                })
        })
        .collect();
    let used = [
        ("jobs", "create"),
        ("jobs", "patch"),
        ("jobs", "list"),
        ("jobs", "watch"),
        ("jobs", "delete"),
        ("pods", "list"),
        ("pods", "watch"),
        ("pods/log", "get"),
        ("secrets", "create"),
    ];
    let used: BTreeSet<(String, String)> = used
        .iter()
        .map(|(resource, verb)| (resource.to_string(), verb.to_string()))
        .collect();
    assert_eq!(granted, used, "exactly the verbs the runner uses");
    let binding: RoleBinding = one(&documents, "RoleBinding", "sluice-runner");
    let deployment: Deployment = one(&documents, "Deployment", "sluice");
    let account = deployment
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .service_account_name;
    assert_eq!(binding.subjects.unwrap()[0].name, account.unwrap());
}
