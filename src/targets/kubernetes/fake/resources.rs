//! The kinds the fake API server serves, and their discovery documents. CRDs applied to the
//! fake add their kinds here.

use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl ResourceType {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

pub fn built_in() -> Vec<ResourceType> {
    let table: &[(&str, &str, &str, &str, bool)] = &[
        ("", "v1", "Namespace", "namespaces", false),
        ("", "v1", "ConfigMap", "configmaps", true),
        ("", "v1", "Secret", "secrets", true),
        ("", "v1", "Service", "services", true),
        ("", "v1", "ServiceAccount", "serviceaccounts", true),
        (
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
        ),
        ("", "v1", "Pod", "pods", true),
        ("apps", "v1", "Deployment", "deployments", true),
        ("apps", "v1", "StatefulSet", "statefulsets", true),
        ("apps", "v1", "DaemonSet", "daemonsets", true),
        ("batch", "v1", "Job", "jobs", true),
        ("batch", "v1", "CronJob", "cronjobs", true),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
        ),
        ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        ),
    ];
    table
        .iter()
        .map(|(group, version, kind, plural, namespaced)| ResourceType {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
            kind: (*kind).to_owned(),
            plural: (*plural).to_owned(),
            namespaced: *namespaced,
        })
        .collect()
}

/// The kinds a CustomResourceDefinition object declares.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let (Some(group), Some(kind), Some(plural)) = (
        spec["group"].as_str(),
        spec["names"]["kind"].as_str(),
        spec["names"]["plural"].as_str(),
    ) else {
        return Vec::new();
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|version| version["name"].as_str())
        .map(|version| ResourceType {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
        })
        .collect()
}

pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

pub fn group_list(resource_types: &[ResourceType]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for resource in resource_types
        .iter()
        .filter(|resource| !resource.group.is_empty())
    {
        match groups
            .iter_mut()
            .find(|(group, _)| *group == resource.group)
        {
            Some((_, versions)) => {
                if !versions.contains(&resource.version) {
                    versions.push(resource.version.clone());
                }
            }
            None => groups.push((resource.group.clone(), vec![resource.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let entries: Vec<Value> = versions
                .iter()
                .map(|version| json!({"groupVersion": format!("{group}/{version}"), "version": version}))
                .collect();
            json!({"name": group, "versions": entries, "preferredVersion": entries[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn resource_list(resource_types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&ResourceType> = resource_types
        .iter()
        .filter(|resource| resource.group == group && resource.version == version)
        .collect();
    if matching.is_empty() {
        return None;
    }
    let verbs = json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]);
    let mut resources = Vec::new();
    for resource in &matching {
        resources.push(json!({
            "name": resource.plural, "singularName": resource.kind.to_ascii_lowercase(),
            "namespaced": resource.namespaced, "kind": resource.kind, "verbs": verbs,
        }));
        resources.push(json!({
            "name": format!("{}/status", resource.plural), "singularName": "",
            "namespaced": resource.namespaced, "kind": resource.kind, "verbs": ["get", "patch", "update"],
        }));
    }
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": matching[0].group_version(), "resources": resources,
    }))
}
