//! Running one pipeline of an event again, asked for by a person in the web UI. The server
//! stores an internal delivery (`sluice_rerun`, refused from outside like every `sluice_*` event)
//! that carries the run's own delivery, the pipeline and who asked; the intake worker plans the
//! carried delivery as it did the first time (the same trust level, the same hold for a fork's
//! code) and keeps only that pipeline's run.

use super::event::PayloadError;
use crate::model::{Delivery, RunId};

/// The event name of a re-run.
pub const RERUN_EVENT: &str = "sluice_rerun";

/// What a re-run keeps, and who asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RerunSelection {
    pub pipeline: String,
    pub requested_by: String,
}

/// The internal delivery that runs `pipeline` of `original` again. `attempt` (the run being
/// re-run) makes it idempotent: a double click stores one delivery.
pub fn rerun_delivery(
    original: &Delivery,
    run: RunId,
    pipeline: &str,
    requested_by: &str,
) -> Delivery {
    super::approval::carrying(
        original,
        format!("rerun:{}:run-{run}", original.id),
        RERUN_EVENT,
        serde_json::json!({ "pipeline": pipeline, "requested_by": requested_by }),
    )
}

/// For a re-run: the carried delivery (under the re-run's own id) and the selection.
pub fn unwrap_rerun(
    delivery: &Delivery,
) -> Result<Option<(Delivery, RerunSelection)>, PayloadError> {
    let Some((inner, wrapper)) = super::approval::carried_delivery(delivery, RERUN_EVENT)? else {
        return Ok(None);
    };
    let text = |pointer: &str| super::approval::carried_text(&wrapper, RERUN_EVENT, pointer);
    Ok(Some((
        inner,
        RerunSelection {
            pipeline: text("/pipeline")?,
            requested_by: text("/requested_by")?,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_carries_the_original_delivery_and_the_pipeline() {
        let original = Delivery {
            id: "d-1".into(),
            event: "push".into(),
            repository: Some("acme/ml".into()),
            payload: br#"{"ref":"refs/heads/main"}"#.to_vec(),
            received_at: chrono::Utc::now(),
        };
        let rerun = rerun_delivery(&original, 7, "platform", "alice");
        assert_eq!(rerun.id, "rerun:d-1:run-7");
        let (inner, selection) = unwrap_rerun(&rerun).unwrap().unwrap();
        assert_eq!(inner.event, "push");
        assert_eq!(inner.payload, original.payload);
        assert_eq!(inner.id, rerun.id, "planned under the re-run's own id");
        assert_eq!(
            selection,
            RerunSelection {
                pipeline: "platform".into(),
                requested_by: "alice".into()
            }
        );
        assert!(unwrap_rerun(&original).unwrap().is_none());
    }
}
