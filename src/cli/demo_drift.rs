//! The drift part of `sluice demo`: behind sluice's back someone scales staging's serving API by
//! hand, as another field manager; `sluice drift staging` finds the field and who changed it, and
//! since staging lists `kubernetes` in `drift.heal`, puts the release's value back and records
//! that in the history.

use super::demo_promotion::DemoPromotion;
use super::drift::render;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

const NAMESPACE: &str = "ml-staging";
const DEPLOYMENT: &str = "serving-api";

impl DemoPromotion {
    pub async fn drift_found_and_healed(&self) -> anyhow::Result<bool> {
        let Some(reconciler) = self.reconciler().await? else {
            return Ok(false);
        };
        println!(
            "==> behind sluice's back, someone runs `kubectl scale deployment/{DEPLOYMENT} --replicas=5 -n {NAMESPACE}` on staging"
        );
        self.scale_by_hand().await?;
        println!(
            "==> sluice drift staging   (staging heals Kubernetes by itself: `drift.heal: [kubernetes]`)"
        );
        let checked = reconciler.check_drift(Some("staging"), None).await?;
        for line in render(&checked).lines() {
            println!("    {line}");
        }
        let healed = checked.iter().any(|environment| {
            environment
                .domains
                .iter()
                .any(|domain| domain.healed.is_some() && domain.drifts.is_empty())
        });
        println!("==> sluice history staging   (the heal, as the history keeps it)");
        for entry in self
            .deploy_store
            .audit(&self.repository, Some("staging"))?
            .iter()
            .filter(|entry| entry.action.starts_with("drift"))
        {
            println!("    {} {}: {}", entry.action, entry.outcome, entry.reason);
        }
        Ok(healed)
    }

    /// The edit, through the API server staging deploys to (or, where Kubernetes is recorded
    /// instead, written where the recording target reads drift).
    async fn scale_by_hand(&self) -> anyhow::Result<()> {
        let Some(url) = self.targets.real.kubernetes_api.clone() else {
            let drift = serde_json::json!([{
                "object": format!("apps/v1 Deployment {NAMESPACE}/{DEPLOYMENT}: spec.replicas"),
                "expected": "1",
                "actual": "5, set by kubectl-edit",
            }]);
            std::fs::write(
                self.targets.recording.join("drift-staging-kubernetes"),
                drift.to_string(),
            )?;
            return Ok(());
        };
        let config = kube::Config::new(url.as_str().trim_end_matches('/').parse()?);
        let client = kube::Client::try_from(config)?;
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
        let deployments: Api<DynamicObject> = Api::namespaced_with(client, NAMESPACE, &resource);
        let params = PatchParams {
            field_manager: Some("kubectl-edit".to_owned()),
            ..PatchParams::default()
        };
        deployments
            .patch(
                DEPLOYMENT,
                &params,
                &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
            )
            .await?;
        Ok(())
    }
}
