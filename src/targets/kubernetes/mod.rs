//! The Kubernetes target: renders an environment's manifests (a directory, or a kustomize
//! overlay), pins the release's images to digests, and applies them with server-side apply
//! through discovery, so any kind works. Objects are applied in waves (namespaces and CRDs,
//! then by `sluice.dev/wave`, config before workloads), skipped when the content hash recorded
//! on them is unchanged, pruned by label when no longer rendered, and watched until their
//! rollouts finish. Rollback re-applies the objects as they were before an apply and deletes
//! what it created. Drift compares the rendered release with the live objects (a dry run only
//! where they differ) and heal re-applies what drifted. This module knows its environment section and the API server, nothing of
//! promotion order, gates or other targets.

mod cluster;
mod compare;
mod config;
mod drift;
pub mod fake;
mod health;
mod policy;
mod render;
mod sync;

pub use cluster::Connection;
pub use config::{HealthConfig, KubernetesConfig};
pub use health::{WorkloadHealth, workload_health};
pub use policy::{check_policies, policy_facts, policy_input};
pub use render::{
    CONTENT_HASH_ANNOTATION, ENVIRONMENT_LABEL, KUBECTL_VARIABLE, MANAGED_BY_LABEL,
    MODEL_ANNOTATION_PREFIX, RELEASE_ANNOTATION, RenderedObject, WAVE_ANNOTATION, kubectl_binary,
    parse_documents, pinned_image,
};

use super::registry::{BuildContext, Registration};
use crate::config::environment::Environment;
use crate::deploy::{
    Applied, DeployContext, Health, Target, TargetDiff, TargetError, TargetFuture, TargetKind,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// What the environment file does not say about a deploy.
#[derive(Clone, Debug, Default)]
pub struct KubernetesOptions {
    /// Reach this API server instead of the environment's kubeconfig/in-cluster credentials
    /// (the fake API server in tests and the demo, or `kubectl proxy`).
    pub api_server: Option<url::Url>,
    /// Evaluate the Rego policies under this directory on the rendered objects before `diff`
    /// and `apply`; a denial rejects the release.
    pub policies: Option<PathBuf>,
}

pub struct KubernetesTarget {
    environment: String,
    config: KubernetesConfig,
    options: KubernetesOptions,
    /// `deployment/serving-api` → models it serves (from `mlflow.models.<name>.restart`).
    restarts: BTreeMap<String, Vec<String>>,
    cluster: tokio::sync::OnceCell<cluster::Cluster>,
    /// Release id → when it was last applied here, for the health timeout.
    applied_at: Mutex<HashMap<String, Instant>>,
}

/// The target for `environment`, or `None` when its file has no `kubernetes:` section.
pub fn from_environment(
    environment: &Environment,
    options: KubernetesOptions,
) -> Result<Option<Box<dyn Target>>, TargetError> {
    Ok(KubernetesTarget::new(environment, options)?
        .map(|target| Box::new(target) as Box<dyn Target>))
}

/// The Kubernetes target in the registry (`crate::targets::TARGETS`).
pub struct Kubernetes;

impl Registration for Kubernetes {
    const NAME: &'static str = "kubernetes";
    type Section = KubernetesConfig;

    fn build(
        environment: &Environment,
        _section: &KubernetesConfig,
        context: &BuildContext<'_>,
    ) -> Result<Option<Box<dyn Target>>, TargetError> {
        let options = KubernetesOptions {
            api_server: context.kubernetes_api.cloned(),
            ..Default::default()
        };
        from_environment(environment, options)
    }

    /// Overlays are rendered with `kubectl kustomize`.
    fn unreachable(_section: &KubernetesConfig) -> Option<String> {
        let kubectl = render::kubectl_binary();
        std::process::Command::new(&kubectl)
            .args(["version", "--client"])
            .output()
            .is_err()
            .then(|| {
                format!(
                    "`{}` cannot be run to render the overlays (`kubectl kustomize`); scripts/setup-kubectl.sh installs one, SLUICE_KUBECTL names it",
                    kubectl.display()
                )
            })
    }
}

impl KubernetesTarget {
    pub fn new(
        environment: &Environment,
        options: KubernetesOptions,
    ) -> Result<Option<KubernetesTarget>, TargetError> {
        let Some(config) = KubernetesConfig::from_environment(environment)? else {
            return Ok(None);
        };
        Ok(Some(KubernetesTarget {
            environment: environment.name.clone(),
            restarts: model_restarts(environment)?,
            config,
            options,
            cluster: tokio::sync::OnceCell::new(),
            applied_at: Mutex::new(HashMap::new()),
        }))
    }

    pub fn config(&self) -> &KubernetesConfig {
        &self.config
    }

    fn connection(&self) -> Connection {
        if let Some(url) = &self.options.api_server {
            Connection::Url(url.clone())
        } else if self.config.in_cluster {
            Connection::InCluster
        } else {
            Connection::Kubeconfig {
                path: self.config.kubeconfig.clone(),
                context: self.config.context.clone(),
            }
        }
    }

    async fn cluster(&self) -> Result<&cluster::Cluster, TargetError> {
        let connection = self.connection();
        self.cluster
            .get_or_try_init(|| async move { cluster::Cluster::connect(&connection).await })
            .await
    }

    fn label_selector(&self) -> String {
        format!(
            "{MANAGED_BY_LABEL}=sluice,{ENVIRONMENT_LABEL}={}",
            self.environment
        )
    }

    /// The objects the context's release renders to, prepared for this environment.
    pub fn render(&self, context: &DeployContext) -> Result<Vec<RenderedObject>, TargetError> {
        let documents = render::read_manifests(&context.tree.join(&self.config.manifests))?;
        // Workloads serving a model follow the version the model target moved its alias to in
        // this deployment; without one (no model target before this one) no model annotation is set.
        let served = context.served_models();
        let mut versions: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (workload, models) in &self.restarts {
            for model in models {
                if let Some(version) = served.get(model) {
                    versions
                        .entry(workload.clone())
                        .or_default()
                        .insert(model.clone(), version.clone());
                }
            }
        }
        let input = render::PrepareInput {
            environment: &self.environment,
            release_id: &context.release.id,
            images: &context.release.images,
            restarts: &versions,
        };
        render::prepare_objects(&documents, &input).map_err(|problems| {
            TargetError::Rejected(format!(
                "kubernetes manifests for {}: {}",
                self.environment,
                problems.join("; ")
            ))
        })
    }

    fn check_policies(
        &self,
        context: &DeployContext,
        objects: &[RenderedObject],
    ) -> Result<(), TargetError> {
        if let Some(directory) = &self.options.policies {
            policy::check_policies(
                directory,
                &self.environment,
                &self.config.namespace,
                objects,
                &context.release,
            )?;
        }
        Ok(())
    }
}

/// `mlflow.models.<name>.restart: [deployment/x]` → workload → models; the section belongs to
/// the MLflow target, so only this field is read.
fn model_restarts(environment: &Environment) -> Result<BTreeMap<String, Vec<String>>, TargetError> {
    let mut restarts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(mlflow) = &environment.targets.mlflow else {
        return Ok(restarts);
    };
    for (model, settings) in &mlflow.models {
        for entry in &settings.restart {
            let parsed = config::parse_workload_reference(entry).ok_or_else(|| {
                TargetError::Configuration(format!(
                    "environments/{}.yaml: `mlflow.models.{model}.restart` entry `{entry}` is not `kind/name`; write e.g. deployment/serving-api",
                    environment.name
                ))
            })?;
            restarts
                .entry(format!("{}/{}", parsed.0, parsed.1))
                .or_default()
                .push(model.clone());
        }
    }
    Ok(restarts)
}

impl Target for KubernetesTarget {
    fn kind(&self) -> TargetKind {
        crate::targets::registry::kind::<Kubernetes>()
    }

    fn diff<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, TargetDiff> {
        Box::pin(sync::diff(self, context))
    }

    fn apply<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Applied> {
        Box::pin(sync::apply(self, context))
    }

    fn health<'a>(&'a self, context: &'a DeployContext) -> TargetFuture<'a, Health> {
        Box::pin(sync::health(self, context))
    }

    fn current<'a>(&'a self, _environment: &'a Environment) -> TargetFuture<'a, serde_json::Value> {
        Box::pin(sync::current(self))
    }

    fn rollback<'a>(
        &'a self,
        context: &'a DeployContext,
        rollback: &'a serde_json::Value,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(async move {
            if !rollback.is_null() {
                return sync::rollback(self, context, rollback).await;
            }
            // The apply failed before it could record what it replaced (e.g. the API server
            // was unreachable): put the previous release's objects back, which also overwrites
            // whatever part of the new release reached the cluster.
            match &context.previous {
                Some(previous) => {
                    let mut restore = context.clone();
                    restore.release = previous.clone();
                    restore.previous = None;
                    let applied = sync::apply(self, &restore).await?;
                    Ok(Applied {
                        summary: format!("re-applied {}: {}", previous.id, applied.summary),
                        ..applied
                    })
                }
                None => Ok(Applied {
                    summary: "the failed apply recorded nothing and no earlier release ran here; nothing to restore".to_owned(),
                    ..Applied::default()
                }),
            }
        })
    }

    fn drift<'a>(
        &'a self,
        context: &'a DeployContext,
    ) -> TargetFuture<'a, crate::deploy::DriftReport> {
        Box::pin(drift::drift(self, context))
    }

    fn heal<'a>(
        &'a self,
        context: &'a DeployContext,
        found: &'a crate::deploy::DriftReport,
    ) -> TargetFuture<'a, Applied> {
        Box::pin(drift::heal(self, context, found))
    }
}
