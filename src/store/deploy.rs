//! The promotion records as SQL: releases, environment state, deployments and their steps,
//! approvals, requests and the audit history (`DeployStore` for `SqliteStore`). Knows the tables,
//! not what promotion decides with them.

use super::deploy_records::{
    AuditEntry, DeployRequest, DeployStore, Deployment, DeploymentAction, DeploymentStatus,
    EnvironmentState, NewAuditEntry, NewDeployment, RequestAction, StepPhase, StepState,
};
use super::error::{Failure, FailureResult, StoreResult};
use super::sql::{Connection, OptionalExtension, Row, params};
use super::sql_store::{Backend, SqlStore};
use crate::model::Release;

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn corrupt(what: &str, text: &str) -> Failure {
    Failure::Sql(super::sql::conversion_error(
        what,
        format!("`{text}` is not a known value"),
    ))
}

fn release_from(body: String) -> FailureResult<Release> {
    serde_json::from_str(&body).map_err(|_| corrupt("release body", &body))
}

fn deployment_from(row: &Row) -> super::sql::SqlResult<(Deployment, String, String)> {
    let action: String = row.get(5)?;
    let status: String = row.get(6)?;
    Ok((
        Deployment {
            id: row.get(0)?,
            repository: row.get(1)?,
            environment: row.get(2)?,
            release: row.get(3)?,
            previous: row.get(4)?,
            action: DeploymentAction::Promote,
            status: DeploymentStatus::Running,
            actor: row.get(7)?,
            reason: row.get(8)?,
            started_at: row.get(9)?,
            finished_at: row.get(10)?,
        },
        action,
        status,
    ))
}

const DEPLOYMENT_COLUMNS: &str = "id, repository, environment, release_id, previous_id, action, \
     status, actor, reason, started_at, finished_at";

fn query_deployments(
    connection: &Connection,
    sql: &str,
    parameters: &[&dyn super::sql::ToValue],
) -> FailureResult<Vec<Deployment>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement
        .query_map(parameters, deployment_from)?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut deployment, action, status)| {
            deployment.action =
                DeploymentAction::parse(&action).ok_or_else(|| corrupt("action", &action))?;
            deployment.status =
                DeploymentStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
            Ok(deployment)
        })
        .collect()
}

const AUDIT_COLUMNS: &str =
    "id, repository, environment, release_id, action, actor, outcome, reason, at";

fn query_audit(
    connection: &Connection,
    sql: &str,
    parameters: impl super::sql::Params,
) -> FailureResult<Vec<AuditEntry>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement
        .query_map(parameters, |row| {
            Ok(AuditEntry {
                id: row.get(0)?,
                repository: row.get(1)?,
                environment: row.get(2)?,
                release: row.get(3)?,
                action: row.get(4)?,
                actor: row.get(5)?,
                outcome: row.get(6)?,
                reason: row.get(7)?,
                at: row.get(8)?,
            })
        })?
        .collect::<super::sql::SqlResult<Vec<_>>>()?;
    Ok(rows)
}

impl<B: Backend> DeployStore for SqlStore<B> {
    fn insert_release(&self, release: &Release) -> StoreResult<bool> {
        let release = release.clone();
        self.backend
            .write("recording a release", move |connection| {
                let inserted = connection.execute(
                    "INSERT INTO releases (repository, id, commit_sha, sequence, body)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![
                        release.repository,
                        release.id,
                        release.commit,
                        release.sequence,
                        json_text(&release)
                    ],
                )?;
                Ok(inserted == 1)
            })
    }

    fn releases(&self, repository: &str) -> StoreResult<Vec<Release>> {
        self.backend.read("listing releases", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT body FROM releases WHERE repository = ?1 ORDER BY sequence DESC, id DESC",
            )?;
            let bodies = statement
                .query_map([repository], |row| row.get::<_, String>(0))?
                .collect::<super::sql::SqlResult<Vec<_>>>()?;
            bodies.into_iter().map(release_from).collect()
        })
    }

    fn release(&self, repository: &str, id: &str) -> StoreResult<Option<Release>> {
        self.backend.read("reading a release", |connection| {
            let body: Option<String> = connection
                .query_row(
                    "SELECT body FROM releases WHERE repository = ?1 AND id = ?2",
                    [repository, id],
                    |row| row.get(0),
                )
                .optional()?;
            body.map(release_from).transpose()
        })
    }

    fn reject_release(&self, repository: &str, id: &str, reason: &str) -> StoreResult<()> {
        let (repository, id, reason) = (repository.to_owned(), id.to_owned(), reason.to_owned());
        self.backend
            .write("rejecting a release", move |connection| {
                connection.execute(
                    "UPDATE releases SET rejected = ?3 WHERE repository = ?1 AND id = ?2",
                    params![repository, id, reason],
                )?;
                Ok(())
            })
    }

    fn rejected_releases(&self, repository: &str) -> StoreResult<Vec<(String, String)>> {
        self.backend
            .read("listing rejected releases", |connection| {
                let mut statement = connection.prepare_cached(
                "SELECT id, rejected FROM releases WHERE repository = ?1 AND rejected IS NOT NULL",
            )?;
                let rows = statement
                    .query_map([repository], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                Ok(rows)
            })
    }

    fn audit_high_water(&self) -> StoreResult<i64> {
        self.backend
            .read("reading the newest history entry", |connection| {
                Ok(connection
                    .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM deploy_audit")?
                    .query_row(params![], |row| row.get(0))?)
            })
    }

    fn environment_order(&self, repository: &str) -> StoreResult<Vec<String>> {
        self.backend
            .read("reading the promotion order", |connection| {
                let names: Option<String> = connection
                    .prepare_cached("SELECT names FROM environment_order WHERE repository = ?1")?
                    .query_row([repository], |row| row.get(0))
                    .optional()?;
                Ok(names
                    .map(|names| names.split('\n').map(str::to_owned).collect())
                    .unwrap_or_default())
            })
    }

    fn record_environment_order(&self, repository: &str, names: &[String]) -> StoreResult<()> {
        if self.environment_order(repository)? == names {
            return Ok(());
        }
        let repository = repository.to_owned();
        let names = names.join("\n");
        self.backend
            .write("recording the promotion order", move |connection| {
                connection.execute(
                    "INSERT INTO environment_order (repository, names) VALUES (?1, ?2)
                 ON CONFLICT (repository) DO UPDATE SET names = excluded.names",
                    params![repository, names],
                )?;
                Ok(())
            })
    }

    fn environment_states(&self, repository: &str) -> StoreResult<Vec<EnvironmentState>> {
        self.backend
            .read("reading environment state", |connection| {
                let mut statement = connection.prepare_cached(
                    "SELECT environment, release_id, healthy_since FROM environment_state
                 WHERE repository = ?1 ORDER BY environment",
                )?;
                let rows = statement
                    .query_map([repository], |row| {
                        Ok(EnvironmentState {
                            environment: row.get(0)?,
                            release: row.get(1)?,
                            healthy_since: row.get(2)?,
                        })
                    })?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                Ok(rows)
            })
    }

    fn start_deployment(&self, deployment: &NewDeployment) -> StoreResult<Option<i64>> {
        let deployment = deployment.clone();
        self.backend
            .write("starting a deployment", move |connection| {
                let inserted = connection.query_row(
                "INSERT INTO deployments (repository, environment, release_id, previous_id, action,
                     status, actor, reason, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8) ON CONFLICT DO NOTHING
                 RETURNING id",
                params![
                    deployment.repository,
                    deployment.environment,
                    deployment.release,
                    deployment.previous,
                    deployment.action.as_str(),
                    deployment.actor,
                    deployment.reason,
                    deployment.at
                ],
                |row| row.get(0),
            )
            .optional()?;
                Ok(inserted)
            })
    }

    fn running_deployments(&self, repository: &str) -> StoreResult<Vec<Deployment>> {
        self.backend
            .read("listing running deployments", |connection| {
                query_deployments(
                    connection,
                    &format!(
                        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
                     WHERE repository = ?1 AND status = 'running' ORDER BY id"
                    ),
                    &[&repository],
                )
            })
    }

    fn deployments(
        &self,
        repository: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        self.backend.read("listing deployments", |connection| {
            query_deployments(
                connection,
                &format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
                     WHERE repository = ?1 AND (CAST(?2 AS TEXT) IS NULL OR environment = ?2)
                     ORDER BY id"
                ),
                &[&repository, &environment],
            )
        })
    }

    fn record_step(&self, deployment: i64, step: &StepState) -> StoreResult<()> {
        let step = step.clone();
        self.backend
            .write("recording a deployment step", move |connection| {
                connection.execute(
                    "INSERT INTO deployment_steps (deployment_id, target, phase, summary, rollback,
                     outputs, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (deployment_id, target) DO UPDATE SET phase = excluded.phase,
                     summary = excluded.summary, rollback = excluded.rollback,
                     outputs = excluded.outputs, at = excluded.at",
                    params![
                        deployment,
                        step.target,
                        step.phase.as_str(),
                        step.summary,
                        json_text(&step.rollback),
                        json_text(&step.outputs),
                        step.at
                    ],
                )?;
                Ok(())
            })
    }

    fn steps(&self, deployment: i64) -> StoreResult<Vec<StepState>> {
        self.backend.read("reading deployment steps", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT target, phase, summary, rollback, outputs, at FROM deployment_steps
                 WHERE deployment_id = ?1 ORDER BY at, target",
            )?;
            let rows = statement
                .query_map([deployment], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })?
                .collect::<super::sql::SqlResult<Vec<_>>>()?;
            rows.into_iter()
                .map(|(target, phase, summary, rollback, outputs, at)| {
                    Ok(StepState {
                        target,
                        phase: StepPhase::parse(&phase).ok_or_else(|| corrupt("phase", &phase))?,
                        summary,
                        rollback: serde_json::from_str(&rollback)
                            .map_err(|_| corrupt("rollback data", &rollback))?,
                        outputs: serde_json::from_str(&outputs)
                            .map_err(|_| corrupt("outputs", &outputs))?,
                        at,
                    })
                })
                .collect::<FailureResult<Vec<_>>>()
        })
    }

    fn finish_deployment_at(
        &self,
        deployment: i64,
        status: DeploymentStatus,
        reason: Option<&str>,
        finished_at: i64,
        now_running: Option<&str>,
    ) -> StoreResult<()> {
        let reason = reason.map(str::to_owned);
        let now_running = now_running.map(str::to_owned);
        self.backend.write("finishing a deployment", move |connection| {
            connection.execute(
                "UPDATE deployments SET status = ?2, reason = coalesce(?3, reason), finished_at = ?4
                 WHERE id = ?1",
                params![deployment, status.as_str(), reason, finished_at],
            )?;
            if let Some(release) = &now_running {
                connection.execute(
                    "INSERT INTO environment_state (repository, environment, release_id, healthy_since)
                     SELECT repository, environment, ?2, ?3 FROM deployments WHERE id = ?1
                     ON CONFLICT (repository, environment) DO UPDATE
                         SET release_id = excluded.release_id, healthy_since = excluded.healthy_since",
                    params![deployment, release, finished_at],
                )?;
            }
            Ok(())
        })
    }

    fn add_approval(
        &self,
        repository: &str,
        environment: &str,
        release: &str,
        approver: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let values = [repository, environment, release, approver].map(str::to_owned);
        self.backend
            .write("recording an approval", move |connection| {
                let inserted = connection.execute(
                    "INSERT INTO approvals (repository, environment, release_id, approver, at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![values[0], values[1], values[2], values[3], at],
                )?;
                Ok(inserted == 1)
            })
    }

    fn approvals(
        &self,
        repository: &str,
        environment: &str,
        release: &str,
    ) -> StoreResult<Vec<String>> {
        self.backend.read("listing approvals", |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT approver FROM approvals
                 WHERE repository = ?1 AND environment = ?2 AND release_id = ?3 ORDER BY at",
            )?;
            let rows = statement
                .query_map([repository, environment, release], |row| row.get(0))?
                .collect::<super::sql::SqlResult<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn add_request(&self, request: &DeployRequest) -> StoreResult<i64> {
        let request = request.clone();
        self.backend.write("recording a deployment request", move |connection| {
            let id = connection.query_row(
                "INSERT INTO deploy_requests (repository, environment, release_id, action, actor, at,
                     force_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                params![
                    request.repository,
                    request.environment,
                    request.release,
                    request.action.as_str(),
                    request.actor,
                    request.at,
                    request.force_reason
                ],
                |row| row.get(0),
            )?;
            Ok(id)
        })
    }

    fn pending_requests(&self, repository: &str) -> StoreResult<Vec<DeployRequest>> {
        self.backend
            .read("listing deployment requests", |connection| {
                let mut statement = connection.prepare_cached(
                "SELECT id, repository, environment, release_id, action, actor, at, force_reason
                 FROM deploy_requests
                 WHERE repository = ?1 AND outcome IS NULL ORDER BY id",
            )?;
                let rows = statement
                    .query_map([repository], |row| {
                        Ok((
                            DeployRequest {
                                id: row.get(0)?,
                                repository: row.get(1)?,
                                environment: row.get(2)?,
                                release: row.get(3)?,
                                action: RequestAction::Promote,
                                actor: row.get(5)?,
                                at: row.get(6)?,
                                outcome: None,
                                force_reason: row.get(7)?,
                            },
                            row.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(mut request, action)| {
                        request.action = RequestAction::parse(&action)
                            .ok_or_else(|| corrupt("action", &action))?;
                        Ok(request)
                    })
                    .collect()
            })
    }

    fn complete_request(&self, id: i64, outcome: &str) -> StoreResult<()> {
        let outcome = outcome.to_owned();
        self.backend
            .write("completing a deployment request", move |connection| {
                connection.execute(
                    "UPDATE deploy_requests SET outcome = ?2 WHERE id = ?1",
                    params![id, outcome],
                )?;
                Ok(())
            })
    }

    fn record_audit(&self, entry: &NewAuditEntry<'_>) -> StoreResult<()> {
        let owned = (
            entry.repository.to_owned(),
            entry.environment.map(str::to_owned),
            entry.release.map(str::to_owned),
            entry.action.to_owned(),
            entry.actor.map(str::to_owned),
            entry.outcome.to_owned(),
            entry.reason.to_owned(),
            entry.at,
        );
        self.backend.write("recording history", move |connection| {
            connection.execute(
                "INSERT INTO deploy_audit (repository, environment, release_id, action, actor,
                     outcome, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    owned.0, owned.1, owned.2, owned.3, owned.4, owned.5, owned.6, owned.7
                ],
            )?;
            Ok(())
        })
    }

    fn audit(&self, repository: &str, environment: Option<&str>) -> StoreResult<Vec<AuditEntry>> {
        self.backend.read("reading history", |connection| {
            query_audit(
                connection,
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM deploy_audit
                     WHERE repository = ?1 AND (CAST(?2 AS TEXT) IS NULL OR environment = ?2)
                     ORDER BY id"
                ),
                params![repository, environment],
            )
        })
    }

    fn audit_of_action(
        &self,
        repository: &str,
        action: &str,
        since: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.backend
            .read("reading history of one action", |connection| {
                query_audit(
                    connection,
                    &format!(
                        "SELECT {AUDIT_COLUMNS} FROM deploy_audit
                     WHERE repository = ?1 AND action = ?2 AND at >= ?3 ORDER BY id"
                    ),
                    params![repository, action, since],
                )
            })
    }

    fn release_repositories(&self) -> StoreResult<Vec<String>> {
        self.backend
            .read("listing repositories with releases", |connection| {
                let mut statement = connection
                    .prepare_cached("SELECT DISTINCT repository FROM releases ORDER BY 1")?;
                let rows = statement
                    .query_map(params![], |row| row.get(0))?
                    .collect::<super::sql::SqlResult<Vec<_>>>()?;
                Ok(rows)
            })
    }
}
