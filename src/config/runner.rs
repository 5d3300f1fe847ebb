//! `runner:` in the server configuration: where `run:` steps execute. `docker` (the default)
//! runs each step in a container through the Docker engine, or as a host process where allowed;
//! `kubernetes` runs each job of `run:` steps as a Kubernetes Job in `namespace`. Pure schema
//! and checks; the Kubernetes runner itself lives in `steps::kubernetes`.

use serde::{Deserialize, Serialize};

/// The image of the checkout container when `checkout-image` is not set: `git` and `sh`.
pub const DEFAULT_CHECKOUT_IMAGE: &str = "alpine/git:2.47.2";

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerKind {
    #[default]
    Docker,
    Kubernetes,
}

/// `runner:` in the server configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// `docker` (default) or `kubernetes`.
    #[serde(default)]
    pub kind: RunnerKind,
    /// The namespace Jobs are created in (kubernetes; default `sluice-jobs`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The service account of the Jobs' pods (kubernetes; default: the namespace's `default`).
    #[serde(default, rename = "service-account")]
    pub service_account: Option<String>,
    /// The image of steps that name none (kubernetes; default: `steps.image`).
    #[serde(default)]
    pub image: Option<String>,
    /// The image that checks the commit out; it needs `git` and `sh`.
    #[serde(default, rename = "checkout-image")]
    pub checkout_image: Option<String>,
    /// CPU and memory of each container of a Job's pod.
    #[serde(default)]
    pub resources: RunnerResources,
    /// An API server reached without credentials (e.g. `kubectl proxy`'s URL); without it the
    /// runner uses the pod's service account in a cluster, else the kubeconfig.
    #[serde(default, rename = "api-server")]
    pub api_server: Option<String>,
}

/// `runner.resources`: Kubernetes quantities, both requests and limits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunnerResources {
    /// e.g. `500m` or `2`.
    #[serde(default)]
    pub cpu: Option<String>,
    /// e.g. `512Mi` or `2Gi`.
    #[serde(default)]
    pub memory: Option<String>,
}

impl RunnerConfig {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("sluice-jobs")
    }
}

/// A DNS label as Kubernetes names namespaces and service accounts.
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
        })
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes quantity as `runner.resources` takes it: a positive decimal number with an
/// optional suffix (`m`, `k`, `M`, `G`, `T`, `Ki`, `Mi`, `Gi`, `Ti`).
pub fn is_quantity(text: &str) -> bool {
    let number_end = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    number.parse::<f64>().is_ok_and(|value| value > 0.0)
        && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities_read_as_kubernetes_reads_them() {
        assert!(is_dns_label("sluice-jobs"));
        assert!(!is_dns_label("Sluice_Jobs"));
        assert!(!is_dns_label("-jobs"));
        for good in ["500m", "2", "0.5", "512Mi", "2Gi"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "lots", "2g", "-1", "0", "1.5.2Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
