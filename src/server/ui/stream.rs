//! Server-Sent Events for the pages' script: `/events` says which run changed, so a page fetches
//! its live parts again; `/runs/{id}/jobs/{job}/log/stream` sends a job's log chunk by chunk as
//! it is written. The log is read from the store, woken by the dispatcher's updates (which are
//! sent after a chunk is stored), so nothing is lost or sent twice; each event's id is the
//! chunk's, so a reconnecting browser resumes where it stopped (`Last-Event-ID`).

use super::{UiError, Viewer, ansi};
use crate::model::RunId;
use crate::scheduler::RunUpdate;
use crate::server::AppState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often a log stream looks at the store without being woken: the floor for changes made
/// by another process.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

fn from_channel(receiver: mpsc::Receiver<Event>) -> Response {
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    let boxed: futures_util::stream::BoxStream<'static, Result<Event, Infallible>> =
        Box::pin(stream);
    Sse::new(boxed)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// How often `/events` looks for new promotion records (promotion announces nothing itself).
const PROMOTION_LOOK: Duration = Duration::from_secs(2);

/// `GET /events`: `change` with the run's id whenever a run or one of its jobs changes status,
/// and with `0` when promotion recorded something (a gate decision, an approval, a deployment).
pub async fn changes(State(state): State<AppState>, _viewer: Viewer) -> Response {
    let (sender, receiver) = mpsc::channel(16);
    let mut updates = state.run_updates.subscribe();
    let closing = state.ui.closing.clone();
    let deploy = state.deploy_store.clone();
    tokio::spawn(async move {
        let high_water = |deploy: std::sync::Arc<dyn crate::store::DeployStore>| async move {
            tokio::task::spawn_blocking(move || deploy.audit_high_water().unwrap_or(0))
                .await
                .unwrap_or(0)
        };
        let mut seen = high_water(deploy.clone()).await;
        let mut look = tokio::time::interval(PROMOTION_LOOK);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let run = tokio::select! {
                _ = closing.cancelled() => break,
                _ = look.tick() => {
                    let now = high_water(deploy.clone()).await;
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    0
                },
                update = updates.recv() => match update {
                    Ok(RunUpdate::RunStatus { run, .. } | RunUpdate::JobStatus { run, .. }) => run,
                    Ok(RunUpdate::LogLine { .. }) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => 0,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sender.closed() => break,
            };
            let event = Event::default().event("change").data(run.to_string());
            if sender.send(event).await.is_err() {
                break;
            }
        }
    });
    from_channel(receiver)
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// The last chunk the page already shows.
    pub after: Option<i64>,
}

/// `GET /runs/{id}/jobs/{job}/log/stream`: `chunk` events (JSON strings of rendered HTML) until
/// the job has finished and its whole log was sent, then `end`.
pub async fn job_log(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path((id, job)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let run: RunId = id
        .parse()
        .map_err(|_| UiError::not_found(format!("run id `{id}` is not a number")))?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok());
    let after = resumed.or(query.after).unwrap_or(0);
    let store = state.store.clone();
    let probe_job = job.clone();
    let known = super::blocking(move || {
        store
            .job_log_since(run, &probe_job, i64::MAX)
            .map_err(UiError::internal)
    })
    .await?;
    if known.is_none() {
        return Err(UiError::not_found(format!(
            "run {run} has no job `{job}`; see /runs/{run} for its jobs"
        )));
    }
    let (sender, receiver) = mpsc::channel(64);
    let updates = state.run_updates.subscribe();
    tokio::spawn(follow_log(state, run, job, after, updates, sender));
    Ok(from_channel(receiver))
}

async fn follow_log(
    state: AppState,
    run: RunId,
    job: String,
    mut after: i64,
    mut updates: broadcast::Receiver<RunUpdate>,
    sender: mpsc::Sender<Event>,
) {
    let mut woken = Woken::Anything;
    loop {
        let store = state.store.clone();
        let name = job.clone();
        let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            // Status first: a job seen finished has all its log stored before the read below.
            // A line logged says nothing new about the status, so it is not read again for it.
            let finished = woken == Woken::Anything
                && store
                    .get_run(run)?
                    .and_then(|run| run.jobs.into_iter().find(|record| record.name == name))
                    .is_none_or(|record| record.status.is_terminal());
            let chunks = store.job_log_since(run, &name, after)?.unwrap_or_default();
            Ok((finished, chunks))
        })
        .await;
        let Ok(Ok((finished, chunks))) = read else {
            tracing::warn!(run, job, "cannot read a job's log for its stream");
            return;
        };
        for chunk in chunks {
            after = chunk.id;
            let html = ansi::to_html(&chunk.text);
            let Ok(event) = Event::default()
                .id(chunk.id.to_string())
                .event("chunk")
                .json_data(html)
            else {
                continue;
            };
            if sender.send(event).await.is_err() {
                return;
            }
        }
        if finished {
            let _ = sender.send(Event::default().event("end").data("")).await;
            return;
        }
        let closing = state.ui.closing.clone();
        woken = tokio::select! {
            change = wait_for_change(&mut updates, &sender, run, &job) => match change {
                Some(woken) => woken,
                None => return,
            },
            _ = closing.cancelled() => return,
        };
    }
}

/// Why a log stream looks at the store again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woken {
    /// The job logged: new chunks, and its status as it was.
    Logged,
    /// Its status changed, updates were missed, or `LOOK_AGAIN` passed: look at everything.
    Anything,
}

/// Waits until this job logs or changes status, or `LOOK_AGAIN` passes; `None` once the
/// browser has gone.
async fn wait_for_change(
    updates: &mut broadcast::Receiver<RunUpdate>,
    sender: &mpsc::Sender<Event>,
    run: RunId,
    job: &str,
) -> Option<Woken> {
    let deadline = tokio::time::sleep(LOOK_AGAIN);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(RunUpdate::LogLine { run: changed, job: name, .. })
                    if changed == run && name == job => return Some(Woken::Logged),
                Ok(RunUpdate::JobStatus { run: changed, job: name, .. })
                    if changed == run && name == job => return Some(Woken::Anything),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(Woken::Anything),
                Err(broadcast::error::RecvError::Closed) => {
                    (&mut deadline).await;
                    return Some(Woken::Anything);
                }
            },
            _ = &mut deadline => return Some(Woken::Anything),
            _ = sender.closed() => return None,
        }
    }
}
