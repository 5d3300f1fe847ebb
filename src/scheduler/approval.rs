//! Runs of untrusted events (pull requests from forks) wait for a person. Their runs are recorded
//! as skipped with a reason saying how to approve them; an approval (`/sluice run` by someone
//! with write permission, or `POST /api/runs/{id}/approve` with an API token) stores an internal delivery that carries the original one, and the intake
//! worker plans that as approved: the runs start, still untrusted (no secrets, no Terraform, no
//! image builds, containers only). Each new push to the pull request waits again, as GitHub
//! Actions does for outside contributors.

use super::event::PayloadError;
use crate::model::{Delivery, RunId, Status};
use crate::store::NewRun;

/// The event name of an approval; the webhook endpoint refuses it from outside.
pub const APPROVAL_EVENT: &str = "sluice_run_approval";

/// How a waiting run's reason starts.
pub const WAITING: &str = "waiting for approval";

/// Why an untrusted run has not started, and what starts it.
pub fn waiting_reason(run_hint: &str) -> String {
    format!(
        "{WAITING}: a pull request from a fork runs only after someone with write permission approves it; {run_hint}"
    )
}

/// Marks runs that would start as waiting instead (skipped, with the reason on the run and its
/// jobs); runs already skipped or failed keep their reason.
pub fn hold(runs: &mut [NewRun]) {
    for run in runs.iter_mut().filter(|run| run.status == Status::Queued) {
        let reason = waiting_reason(
            "comment `/sluice run` on the pull request, or `POST /api/runs/RUN/approve` with an API token",
        );
        run.status = Status::Skipped;
        run.reason = Some(reason.clone());
        for job in &mut run.jobs {
            job.status = Status::Skipped;
            job.reason = Some(reason.clone());
        }
    }
}

/// The internal delivery that approves the runs of `original` (one per run, so approving twice
/// changes nothing).
pub fn approval_delivery(original: &Delivery, run: RunId, approver: &str) -> Delivery {
    carrying(
        original,
        format!("approval:{}:run-{run}", original.id),
        APPROVAL_EVENT,
        serde_json::json!({ "approved_by": approver, "run": run }),
    )
}

/// An internal delivery `event` with id `id` that carries `original` (read back with
/// `carried_delivery`) beside the fields of `wrapper`, an object.
pub fn carrying(
    original: &Delivery,
    id: String,
    event: &str,
    mut wrapper: serde_json::Value,
) -> Delivery {
    wrapper["delivery"] = serde_json::json!({
        "id": original.id,
        "event": original.event,
        "payload": String::from_utf8_lossy(&original.payload),
    });
    Delivery {
        id,
        event: event.to_owned(),
        repository: original.repository.clone(),
        payload: wrapper.to_string().into_bytes(),
        received_at: chrono::Utc::now(),
    }
}

/// For an approval: the approved delivery (under the approval's own id) and who approved it. An
/// approval that does not read is a payload error, as a broken webhook payload is.
pub fn unwrap_approval(delivery: &Delivery) -> Result<Option<(Delivery, String)>, PayloadError> {
    let Some((inner, wrapper)) = carried_delivery(delivery, APPROVAL_EVENT)? else {
        return Ok(None);
    };
    let approver = carried_text(&wrapper, APPROVAL_EVENT, "/approved_by")?;
    Ok(Some((inner, approver)))
}

/// The delivery an internal delivery of event `event` carries under `delivery` (`event` and
/// `payload` as text), given the internal delivery's own id, and the internal payload itself;
/// `None` for a delivery of another event.
pub fn carried_delivery(
    delivery: &Delivery,
    event: &str,
) -> Result<Option<(Delivery, serde_json::Value)>, PayloadError> {
    if delivery.event != event {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&delivery.payload).map_err(|error| PayloadError::NotJson {
            event: event.to_owned(),
            message: error.to_string(),
        })?;
    let text = |pointer: &str| carried_text(&value, event, pointer);
    let inner = Delivery {
        id: delivery.id.clone(),
        event: text("/delivery/event")?,
        repository: delivery.repository.clone(),
        payload: text("/delivery/payload")?.into_bytes(),
        received_at: delivery.received_at,
    };
    Ok(Some((inner, value)))
}

/// A text field an internal delivery of event `event` must carry; its absence is a payload error
/// naming the field.
pub fn carried_text(
    wrapper: &serde_json::Value,
    event: &str,
    pointer: &str,
) -> Result<String, PayloadError> {
    wrapper
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| PayloadError::MissingField {
            event: event.to_owned(),
            field: pointer.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_carries_the_original_delivery_and_the_approver() {
        let original = Delivery {
            id: "d-1".to_owned(),
            event: "pull_request".to_owned(),
            repository: Some("acme/ml".to_owned()),
            payload: br#"{"number": 7}"#.to_vec(),
            received_at: chrono::Utc::now(),
        };
        let approval = approval_delivery(&original, 12, "dana");
        assert_eq!(approval.id, "approval:d-1:run-12");
        let (inner, approver) = unwrap_approval(&approval).unwrap().unwrap();
        assert_eq!(inner.event, "pull_request");
        assert_eq!(inner.payload, original.payload);
        assert_eq!(approver, "dana");
        assert_eq!(unwrap_approval(&original).unwrap(), None);
    }
}
