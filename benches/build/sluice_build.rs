//! One call of sluice's `build_and_push` as a step would make it, with the step log drained so
//! it costs what a real run's log costs, as a trusted run whose records of built images last for
//! the process. Knows nothing of timing or of the other peers.

use sluice::model::TrustLevel;
use sluice::steps::build::{
    BuildInputs, BuildReport, BuildRequest, ImageName, Provenance, build_and_push,
};
use sluice::store::SqliteStore;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// A store for the records of what this process built, in a directory removed at exit.
fn provenance() -> anyhow::Result<Provenance> {
    static STORE: OnceLock<(tempfile::TempDir, Arc<SqliteStore>)> = OnceLock::new();
    if STORE.get().is_none() {
        let directory = tempfile::tempdir()?;
        let store = SqliteStore::open(&directory.path().join("sluice.db"))?;
        let _ = STORE.set((directory, Arc::new(store)));
    }
    let (_, store) = STORE.get().expect("set above");
    Ok(Provenance {
        store: store.clone(),
        repository: "example/sluice-bench".to_owned(),
        run_id: 1,
        trust: TrustLevel::Trusted,
    })
}

/// Builds `context` of `workspace` as `image:tag`, pushing when asked.
pub async fn build(
    workspace: &std::path::Path,
    context: &str,
    image: &str,
    tag: &str,
    push: bool,
) -> anyhow::Result<BuildReport> {
    let image_name = ImageName::parse(image, None).map_err(anyhow::Error::msg)?;
    let request = BuildRequest {
        workspace: workspace.to_owned(),
        context: context.to_owned(),
        dockerfile: format!("{context}/Dockerfile"),
        image: image_name,
        tags: vec![tag.to_owned()],
        inputs: BuildInputs::default(),
        push,
        credentials: None,
        revision: "0000000000000000000000000000000000000000".to_owned(),
        source: "https://github.com/example/sluice-bench".to_owned(),
    };
    let (log, mut log_lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let drain = tokio::spawn(async move {
        let mut last_lines = std::collections::VecDeque::new();
        while let Some(line) = log_lines.recv().await {
            if last_lines.len() == 20 {
                last_lines.pop_front();
            }
            last_lines.push_back(line);
        }
        last_lines
    });
    let provenance = provenance()?;
    let outcome = build_and_push(&request, &provenance, &log, &CancellationToken::new()).await;
    drop(log);
    let last_lines = drain.await.unwrap_or_default();
    outcome.map_err(|error| {
        anyhow::anyhow!(
            "sluice build of {image}:{tag} failed: {error:?}; last log lines:\n{}",
            last_lines.into_iter().collect::<String>()
        )
    })
}
