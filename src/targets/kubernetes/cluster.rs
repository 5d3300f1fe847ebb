//! The API server, through `kube`: connecting (a kubeconfig and context, the pod's service
//! account, or a URL), discovery (cached, refreshed when a kind is unknown), and the verbs the
//! target uses on any kind: LIST by label, GET, server-side apply (optionally dry-run), DELETE.
//! Errors name the object and say what to do; no credentials appear in them. Knows nothing of
//! releases, waves or pruning rules.

use crate::deploy::TargetError;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, Config};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// How to reach the API server.
#[derive(Clone, Debug, PartialEq)]
pub enum Connection {
    /// A plain URL without credentials (the fake API server, `kubectl proxy`).
    Url(Url),
    /// A kubeconfig file (default `$KUBECONFIG` or `~/.kube/config`) and context.
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
    /// The pod's service account.
    InCluster,
}

/// A kind the cluster serves, resolved through discovery.
#[derive(Clone, Debug)]
pub struct ResolvedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// The field manager sluice applies as, and the one whose dry runs the drift check makes.
pub const FIELD_MANAGER: &str = "sluice";

pub struct Cluster {
    client: Client,
    /// The API server's URL, for errors.
    server: String,
    discovery: tokio::sync::Mutex<Option<Arc<Discovery>>>,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> TargetError {
    TargetError::Unavailable(format!(
        "{what}: {error}; check that the API server is reachable and the credentials are valid"
    ))
}

impl Cluster {
    pub async fn connect(connection: &Connection) -> Result<Cluster, TargetError> {
        let config = match connection {
            Connection::Url(url) => {
                let uri = url.as_str().trim_end_matches('/').parse().map_err(|error| {
                    TargetError::Configuration(format!("API server URL {url} is invalid: {error}"))
                })?;
                Config::new(uri)
            }
            Connection::InCluster => Config::incluster().map_err(|error| {
                TargetError::Configuration(format!(
                    "`kubernetes.in_cluster` is set but the pod's service account cannot be read: {error}; run inside a pod or use `kubeconfig`"
                ))
            })?,
            Connection::Kubeconfig { path, context } => {
                let options = KubeConfigOptions { context: context.clone(), ..KubeConfigOptions::default() };
                let loaded = match path {
                    Some(path) => {
                        let kubeconfig = Kubeconfig::read_from(path).map_err(|error| {
                            TargetError::Configuration(format!(
                                "kubeconfig {} cannot be read: {error}; fix `kubernetes.kubeconfig`",
                                path.display()
                            ))
                        })?;
                        Config::from_custom_kubeconfig(kubeconfig, &options).await
                    }
                    None => Config::from_kubeconfig(&options).await,
                };
                loaded.map_err(|error| {
                    TargetError::Configuration(format!(
                        "no usable kubeconfig for context {}: {error}; set `kubernetes.kubeconfig` and `kubernetes.context`, or $KUBECONFIG",
                        context.as_deref().unwrap_or("(current)")
                    ))
                })?
            }
        };
        let mut config = config;
        let server = config.cluster_url.to_string();
        // The deployment's retry policy owns transient errors (bounded, recorded in the
        // history); the client's own layer would retry 503s silently for up to 15 attempts.
        config.default_retry = false;
        let client = Client::try_from(config)
            .map_err(|error| unavailable("cannot build the Kubernetes client", error))?;
        Ok(Cluster {
            client,
            server,
            discovery: tokio::sync::Mutex::new(None),
        })
    }

    /// Discovery, run once and again when `refresh` (after CRDs were applied).
    pub async fn discovery(&self, refresh: bool) -> Result<Arc<Discovery>, TargetError> {
        let mut cached = self.discovery.lock().await;
        if let Some(discovery) = cached.as_ref()
            && !refresh
        {
            return Ok(discovery.clone());
        }
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|error| self.read_error("API discovery failed", error))?;
        let discovery = Arc::new(discovery);
        *cached = Some(discovery.clone());
        Ok(discovery)
    }

    pub fn resolve(discovery: &Discovery, api_version: &str, kind: &str) -> Option<ResolvedKind> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (resource, capabilities) =
            discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind))?;
        Some(ResolvedKind {
            resource,
            namespaced: capabilities.scope == Scope::Namespaced,
        })
    }

    /// The preferred version of `kind` in `group`, when served.
    pub fn resolve_kind(discovery: &Discovery, group: &str, kind: &str) -> Option<ResolvedKind> {
        let (resource, capabilities) = discovery.get(group)?.recommended_kind(kind)?;
        Some(ResolvedKind {
            resource,
            namespaced: capabilities.scope == Scope::Namespaced,
        })
    }

    fn api(&self, kind: &ResolvedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(namespace)) => {
                Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
            }
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// Every object of the kind, in all namespaces, whose labels match `selector`: one LIST.
    pub async fn list(
        &self,
        kind: &ResolvedKind,
        selector: &str,
    ) -> Result<Vec<Value>, TargetError> {
        let list = self
            .api(kind, None)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|error| {
                self.read_error(&format!("cannot list {}", kind.resource.plural), error)
            })?;
        let api_version = kind.resource.api_version.clone();
        let kind_name = kind.resource.kind.clone();
        Ok(list
            .items
            .into_iter()
            .map(|object| {
                let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
                value["apiVersion"] = Value::String(api_version.clone());
                value["kind"] = Value::String(kind_name.clone());
                value
            })
            .collect())
    }

    pub async fn get(
        &self,
        kind: &ResolvedKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, TargetError> {
        let object = self
            .api(kind, namespace)
            .get_opt(name)
            .await
            .map_err(|error| {
                self.read_error(&format!("cannot read {} {name}", kind.resource.kind), error)
            })?;
        Ok(object.map(|object| serde_json::to_value(object).unwrap_or(Value::Null)))
    }

    /// Server-side apply with field manager `sluice`; returns the object as the server has it.
    pub async fn apply(
        &self,
        kind: &ResolvedKind,
        namespace: Option<&str>,
        name: &str,
        manifest: &Value,
        force: bool,
        dry_run: bool,
    ) -> Result<Value, TargetError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let address = super::render::object_address(&kind.resource.kind, namespace, name);
        let applied = self
            .api(kind, namespace)
            .patch(name, &params, &Patch::Apply(manifest))
            .await
            .map_err(|error| apply_error(&address, error))?;
        Ok(serde_json::to_value(applied).unwrap_or(Value::Null))
    }

    /// A read that failed: names the API server and, when it answered, its status.
    fn read_error(&self, what: &str, error: kube::Error) -> TargetError {
        match &error {
            kube::Error::Api(status) => TargetError::Unavailable(format!(
                "{what}: the API server at {} answered {} {}: {}",
                self.server, status.code, status.reason, status.message
            )),
            _ => unavailable(
                &format!("{what} from the API server at {}", self.server),
                error,
            ),
        }
    }

    /// Deletes the object; one already gone counts as deleted.
    pub async fn delete(
        &self,
        kind: &ResolvedKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), TargetError> {
        match self
            .api(kind, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(unavailable(
                &format!(
                    "cannot delete {}",
                    super::render::object_address(&kind.resource.kind, namespace, name)
                ),
                error,
            )),
        }
    }
}

fn apply_error(address: &str, error: kube::Error) -> TargetError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => TargetError::Rejected(format!(
            "{address}: another field manager owns fields sluice sets ({}); set `kubernetes.force: true` to take them over, or remove them from the manifest",
            status.message
        )),
        kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422) => {
            TargetError::Rejected(format!(
                "{address}: the API server refused the object ({} {}): {}; fix the manifest or the permissions",
                status.code, status.reason, status.message
            ))
        }
        kube::Error::Api(status) => TargetError::Unavailable(format!(
            "cannot apply {address}: the API server answered {} {}: {}",
            status.code, status.reason, status.message
        )),
        _ => unavailable(&format!("cannot apply {address}"), error),
    }
}
