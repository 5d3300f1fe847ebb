//! From files to the objects sluice applies: reads a manifest directory (or renders a kustomize
//! overlay with `kubectl kustomize`), parses every YAML document, and prepares each object for
//! this environment and release: sluice's labels, image digests, model restarts, the content
//! hash, and the order objects are applied in. Knows nothing of the API server.

use crate::deploy::TargetError;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "sluice";
pub const ENVIRONMENT_LABEL: &str = "sluice.dev/environment";
pub const CONTENT_HASH_ANNOTATION: &str = "sluice.dev/content-hash";
/// The release that last wrote the object; not part of the content hash, so a release that
/// leaves an object as it was does not rewrite it.
pub const RELEASE_ANNOTATION: &str = "sluice.dev/release";
pub const WAVE_ANNOTATION: &str = "sluice.dev/wave";
/// Prefix of the pod-template annotation that rolls a workload when its model moves.
pub const MODEL_ANNOTATION_PREFIX: &str = "sluice.dev/model-";

/// One document of the rendered manifests, before it is prepared.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceDocument {
    /// `platform/k8s/app.yaml#2` (1-based document index), or `kubectl kustomize DIR#2`.
    pub source: String,
    pub value: Value,
}

/// An object ready to apply.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Set from the manifest; the caller fills the environment's namespace for namespaced kinds.
    pub namespace: Option<String>,
    /// The manifest as applied, labels and annotations included.
    pub manifest: Value,
    pub content_hash: String,
    pub source: String,
}

impl RenderedObject {
    /// `Deployment/ml-dev/serving-api`, or `Namespace/ml-dev` for cluster-scoped objects.
    pub fn address(&self) -> String {
        object_address(&self.kind, self.namespace.as_deref(), &self.name)
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    pub fn wave(&self) -> i64 {
        self.manifest
            .pointer("/metadata/annotations")
            .and_then(|annotations| annotations.get(WAVE_ANNOTATION))
            .and_then(|wave| match wave {
                Value::String(text) => text.trim().parse().ok(),
                Value::Number(number) => number.as_i64(),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Sort key of the apply order: namespaces and CRDs before anything; then by sync wave
    /// (`sluice.dev/wave`, default 0, negative first); within a wave config before workloads
    /// before everything else; then kind, namespace and name for a stable order.
    pub fn apply_order(&self) -> (u8, i64, u8, String, String, String) {
        let bootstrap = if is_bootstrap_kind(&self.kind) { 0 } else { 1 };
        (
            bootstrap,
            if bootstrap == 0 { 0 } else { self.wave() },
            kind_phase(&self.kind),
            self.kind.clone(),
            self.namespace.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

pub fn object_address(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) if !namespace.is_empty() => format!("{kind}/{namespace}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

pub fn is_bootstrap_kind(kind: &str) -> bool {
    matches!(kind, "Namespace" | "CustomResourceDefinition")
}

/// 0 config, 1 workloads, 2 the rest.
fn kind_phase(kind: &str) -> u8 {
    match kind {
        "ConfigMap"
        | "Secret"
        | "ServiceAccount"
        | "Role"
        | "RoleBinding"
        | "ClusterRole"
        | "ClusterRoleBinding"
        | "Service"
        | "PersistentVolumeClaim"
        | "LimitRange"
        | "ResourceQuota"
        | "PriorityClass"
        | "StorageClass" => 0,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "Pod" | "ReplicaSet" => 1,
        _ => 2,
    }
}

/// Reads the manifests under `directory`: `kubectl kustomize` when it holds a kustomization,
/// else every `.yaml`/`.yml`/`.json` file below it in path order. Every problem is reported.
pub fn read_manifests(directory: &Path) -> Result<Vec<SourceDocument>, TargetError> {
    if !directory.is_dir() {
        return Err(TargetError::Configuration(format!(
            "kubernetes manifests directory {} does not exist in the release; fix `kubernetes.manifests`",
            directory.display()
        )));
    }
    let is_kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|name| directory.join(name).is_file());
    if is_kustomization {
        let text = run_kustomize(directory)?;
        let source = format!("kubectl kustomize {}", directory.display());
        return parse_documents(&source, &text)
            .map_err(|problems| TargetError::Rejected(problems.join("; ")));
    }
    let mut files = Vec::new();
    collect_manifest_files(directory, &mut files);
    files.sort();
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_documents(&shown, &text) {
                Ok(parsed) => documents.extend(parsed),
                Err(errors) => problems.extend(errors),
            },
            Err(error) => problems.push(format!("{shown}: cannot read: {error}")),
        }
    }
    if problems.is_empty() {
        Ok(documents)
    } else {
        Err(TargetError::Rejected(problems.join("; ")))
    }
}

fn collect_manifest_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_manifest_files(&path, files);
        } else if matches!(
            path.extension().and_then(|extension| extension.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
}

/// Set to the path of a `kubectl` binary to render overlays with it instead of the one on `PATH`.
pub const KUBECTL_VARIABLE: &str = "SLUICE_KUBECTL";

/// The `kubectl` that renders kustomize overlays: `SLUICE_KUBECTL` when set, else `kubectl` as
/// `PATH` finds it.
pub fn kubectl_binary() -> PathBuf {
    std::env::var_os(KUBECTL_VARIABLE)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

fn run_kustomize(directory: &Path) -> Result<String, TargetError> {
    let kubectl = kubectl_binary();
    let output = std::process::Command::new(&kubectl)
        .arg("kustomize")
        .arg(directory)
        .output()
        .map_err(|error| {
            TargetError::Configuration(format!(
                "{} holds a kustomization.yaml, which needs `kubectl kustomize`, but `{}` cannot be run ({error}); install kubectl on the machine that deploys (or set {KUBECTL_VARIABLE} to its path), or point `kubernetes.manifests` at plain manifests",
                directory.display(),
                kubectl.display()
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(TargetError::Rejected(format!(
            "kubectl kustomize {} failed: {}; fix the overlay",
            directory.display(),
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Splits a multi-document YAML text and parses each document; empty documents are skipped.
/// Errors name the source and the 1-based document index.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<SourceDocument>, Vec<String>> {
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for (index, document_text) in split_documents(text).into_iter().enumerate() {
        let shown = format!("{source}#{}", index + 1);
        match serde_saphyr::from_str::<Option<Value>>(&document_text) {
            Ok(None) | Ok(Some(Value::Null)) => {}
            Ok(Some(Value::Object(object))) => {
                let value = Value::Object(object);
                if value.get("kind").and_then(Value::as_str) == Some("List") {
                    for item in value.get("items").and_then(Value::as_array).into_iter().flatten() {
                        documents.push(SourceDocument { source: shown.clone(), value: item.clone() });
                    }
                } else {
                    documents.push(SourceDocument { source: shown, value });
                }
            }
            Ok(Some(_)) => problems.push(format!(
                "{shown}: the document is not a mapping; each document must be one Kubernetes object"
            )),
            Err(error) => problems.push(format!("{shown}: invalid YAML: {error}")),
        }
    }
    if problems.is_empty() {
        Ok(documents)
    } else {
        Err(problems)
    }
}

fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            documents.push(String::new());
            let rest = line[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                documents.last_mut().unwrap().push_str(rest);
                documents.last_mut().unwrap().push('\n');
            }
            continue;
        }
        let current = documents.last_mut().unwrap();
        current.push_str(line);
        current.push('\n');
    }
    documents
}

/// What preparing objects needs to know about the deploy.
#[derive(Clone, Debug)]
pub struct PrepareInput<'a> {
    pub environment: &'a str,
    pub release_id: &'a str,
    /// Image name → pinned `registry/name@sha256:...` (the release's images).
    pub images: &'a BTreeMap<String, String>,
    /// `deployment/serving-api` (lowercase kind) → model name → version: pod-template
    /// annotations that roll the workload when the model it serves moves.
    pub restarts: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// Prepares every document; every invalid one is reported.
pub fn prepare_objects(
    documents: &[SourceDocument],
    input: &PrepareInput<'_>,
) -> Result<Vec<RenderedObject>, Vec<String>> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for document in documents {
        match prepare_object(document, input) {
            Ok(object) => {
                let key = format!("{}|{}", object.api_version, object.address());
                if let Some(first) = seen.insert(key, document.source.clone()) {
                    problems.push(format!(
                        "{}: {} is also defined in {first}; keep one definition",
                        document.source,
                        object.address()
                    ));
                }
                objects.push(object);
            }
            Err(problem) => problems.push(problem),
        }
    }
    objects.sort_by_key(RenderedObject::apply_order);
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(problems)
    }
}

fn prepare_object(
    document: &SourceDocument,
    input: &PrepareInput<'_>,
) -> Result<RenderedObject, String> {
    let source = &document.source;
    let mut manifest = document.value.clone();
    let text_field = |pointer: &str| {
        manifest
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let api_version = text_field("/apiVersion")
        .ok_or_else(|| format!("{source}: no `apiVersion`; every object needs one"))?;
    let kind = text_field("/kind")
        .ok_or_else(|| format!("{source}: no `kind`; every object needs one"))?;
    let name = text_field("/metadata/name").ok_or_else(|| {
        format!("{source}: {kind} has no `metadata.name`; name it (generateName is not supported)")
    })?;
    let namespace = text_field("/metadata/namespace");
    let metadata = manifest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("{source}: `metadata` is not a mapping"))?;
    let labels = child_object(metadata, "labels");
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY_VALUE));
    labels.insert(ENVIRONMENT_LABEL.into(), json!(input.environment));
    let annotations = child_object(metadata, "annotations");
    annotations.remove(CONTENT_HASH_ANNOTATION);
    annotations.remove(RELEASE_ANNOTATION);
    if let Some(pod_spec) = pod_specs_mut(&kind, &mut manifest) {
        rewrite_images(pod_spec, input.images);
    }
    let reference = format!("{}/{name}", kind.to_ascii_lowercase());
    if let Some(models) = input.restarts.get(&reference)
        && let Some(template_metadata) = pod_template_metadata_mut(&kind, &mut manifest)
    {
        let annotations = child_object(template_metadata, "annotations");
        for (model, version) in models {
            annotations.insert(
                format!("{MODEL_ANNOTATION_PREFIX}{}", annotation_safe(model)),
                json!(version),
            );
        }
    }
    let content_hash = content_hash(&manifest);
    let metadata = manifest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("checked above");
    let annotations = child_object(metadata, "annotations");
    annotations.insert(CONTENT_HASH_ANNOTATION.into(), json!(content_hash));
    annotations.insert(RELEASE_ANNOTATION.into(), json!(input.release_id));
    Ok(RenderedObject {
        api_version,
        kind,
        name,
        namespace,
        manifest,
        content_hash,
        source: source.clone(),
    })
}

fn child_object<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = parent.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn annotation_safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.') {
                character
            } else {
                '-'
            }
        })
        .collect();
    cleaned
        .chars()
        .take(63 - MODEL_ANNOTATION_PREFIX.len().min(20))
        .collect()
}

/// sha256 over the manifest's canonical JSON (keys sorted), without sluice's own annotations.
pub fn content_hash(manifest: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(manifest, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn pod_template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

fn pod_template_metadata_mut<'a>(
    kind: &str,
    manifest: &'a mut Value,
) -> Option<&'a mut Map<String, Value>> {
    let template = manifest
        .pointer_mut(pod_template_pointer(kind)?)?
        .as_object_mut()?;
    Some(child_object(template, "metadata"))
}

fn pod_specs_mut<'a>(kind: &str, manifest: &'a mut Value) -> Option<&'a mut Value> {
    if kind == "Pod" {
        return manifest.get_mut("spec");
    }
    manifest.pointer_mut(&format!("{}/spec", pod_template_pointer(kind)?))
}

/// Rewrites every container image the release built to its pinned digest reference.
fn rewrite_images(pod_spec: &mut Value, images: &BTreeMap<String, String>) {
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = pod_spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let Some(image) = container.get("image").and_then(Value::as_str) else {
                continue;
            };
            if let Some(pinned) = pinned_image(image, images) {
                container["image"] = json!(pinned);
            }
        }
    }
}

/// The pinned reference for `image` when the release built it: matched by repository
/// (`registry/name`) or by the last path segment (`name`).
pub fn pinned_image(image: &str, images: &BTreeMap<String, String>) -> Option<String> {
    let repository = image_repository(image);
    let short_name = repository.rsplit('/').next().unwrap_or(repository);
    images.iter().find_map(|(name, pinned)| {
        let pinned_repository = image_repository(pinned);
        let matches = name == repository || name == short_name || pinned_repository == repository;
        matches.then(|| pinned.clone())
    })
}

/// `host:5000/team/name:tag@sha256:..` → `host:5000/team/name`.
pub fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |index| index + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_repositories() {
        let check =
            |image: &str, expect: &str| assert_eq!(image_repository(image), expect, "{image}");
        check("serving-api", "serving-api");
        check("serving-api:1.2", "serving-api");
        check(
            "127.0.0.1:5000/serving-api:3f9c2ab",
            "127.0.0.1:5000/serving-api",
        );
        check("127.0.0.1:5000/serving-api", "127.0.0.1:5000/serving-api");
        check("r.io/a/b@sha256:ab", "r.io/a/b");
    }

    #[test]
    fn parse_errors_name_the_file_and_document() {
        let problems =
            parse_documents("app.yaml", "kind: A\n---\n[unclosed\n---\n- 1\n").unwrap_err();
        assert!(
            problems[0].starts_with("app.yaml#2: invalid YAML"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("app.yaml#3: the document is not a mapping"),
            "{problems:?}"
        );
    }

    #[test]
    fn images_are_pinned_labels_added_and_the_hash_ignores_the_release() {
        let documents = parse_documents(
            "d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: api, image: '127.0.0.1:5000/serving-api:3f9c2ab'}\n      - {name: side, image: 'busybox:1.36'}\n",
        )
        .unwrap();
        let images = BTreeMap::from([(
            "serving-api".to_owned(),
            "127.0.0.1:5000/serving-api@sha256:abc".to_owned(),
        )]);
        let restarts = BTreeMap::from([(
            "deployment/api".to_owned(),
            BTreeMap::from([("churn-classifier".to_owned(), "7".to_owned())]),
        )]);
        let prepare = |release_id: &str| {
            prepare_objects(
                &documents,
                &PrepareInput {
                    environment: "dev",
                    release_id,
                    images: &images,
                    restarts: &restarts,
                },
            )
            .unwrap()
            .remove(0)
        };
        let first = prepare("r1-aaaa");
        let second = prepare("r2-bbbb");
        assert_eq!(first.content_hash, second.content_hash);
        let containers = &first.manifest["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0]["image"],
            "127.0.0.1:5000/serving-api@sha256:abc"
        );
        assert_eq!(containers[1]["image"], "busybox:1.36");
        assert_eq!(
            first.manifest["metadata"]["labels"][ENVIRONMENT_LABEL],
            "dev"
        );
        assert_eq!(
            first.manifest["spec"]["template"]["metadata"]["annotations"]["sluice.dev/model-churn-classifier"],
            "7"
        );
    }
}
