//! Listings with an optional filter (history, deployments, drift, model alias moves) on both
//! databases: a filter left open lists everything, a filter given lists only what matches.
//! Regression: on PostgreSQL every one of them failed with "could not determine data type of
//! parameter" because a parameter compared only with `IS NULL` has no type there.

use sluice::store::{
    AliasMoveFilter, Database, DeploymentAction, Finding, NewAliasMove, NewAuditEntry,
    NewDeployment,
};

#[path = "support/databases.rs"]
mod databases;

const REPOSITORY: &str = "acme/ml-platform";

fn record_in(store: &dyn Database, environment: &str) {
    store
        .start_deployment(&NewDeployment {
            repository: REPOSITORY.to_string(),
            environment: environment.to_string(),
            release: "r1-a1b2c3000000".to_string(),
            previous: None,
            action: DeploymentAction::Promote,
            actor: None,
            reason: None,
            at: 1_790_000_000,
        })
        .unwrap()
        .expect("no deployment runs in the environment yet");
    store
        .record_audit(&NewAuditEntry {
            repository: REPOSITORY,
            environment: Some(environment),
            release: Some("r1-a1b2c3000000"),
            action: "deploy",
            actor: None,
            outcome: "started",
            reason: "promotion",
            at: 1_790_000_000,
        })
        .unwrap();
    store
        .record_alias_move(&NewAliasMove {
            environment: environment.to_string(),
            model: "churn".to_string(),
            alias: "champion".to_string(),
            mode: "alias".to_string(),
            from_version: None,
            to_version: Some("3".to_string()),
            release_id: "r1-a1b2c3000000".to_string(),
            reason: "deploy".to_string(),
        })
        .unwrap();
    let finding = Finding::Checked {
        drifts: vec![(
            "deployment/trainer".to_string(),
            "replicas: 2".to_string(),
            "replicas: 3".to_string(),
        )],
        review: None,
    };
    store
        .record_drift_check(
            REPOSITORY,
            environment,
            "kubernetes",
            "r1-a1b2c3000000",
            &finding,
            1_790_000_000,
        )
        .unwrap();
}

#[test]
fn open_filters_list_everything_and_given_filters_list_what_matches_on_both_databases() {
    databases::on_both_stores(|store| {
        record_in(store, "dev");
        record_in(store, "staging");

        assert_eq!(store.deployments(REPOSITORY, None).unwrap().len(), 2);
        assert_eq!(store.deployments(REPOSITORY, Some("dev")).unwrap().len(), 1);
        assert_eq!(store.audit(REPOSITORY, None).unwrap().len(), 2);
        let staging = store.audit(REPOSITORY, Some("staging")).unwrap();
        assert_eq!(staging.len(), 1);
        assert_eq!(staging[0].environment.as_deref(), Some("staging"));

        assert_eq!(
            store
                .alias_moves(&AliasMoveFilter::default())
                .unwrap()
                .len(),
            2
        );
        let dev_moves = AliasMoveFilter {
            environment: Some("dev".to_string()),
            model: Some("churn".to_string()),
            alias: Some("champion".to_string()),
            limit: None,
        };
        assert_eq!(store.alias_moves(&dev_moves).unwrap().len(), 1);

        assert_eq!(store.drift(None, None).unwrap().len(), 2);
        assert_eq!(store.drift(Some(REPOSITORY), Some("dev")).unwrap().len(), 1);
        assert_eq!(store.drift_checks(None).unwrap().len(), 2);
        assert!(store.drift_checks(Some("acme/other")).unwrap().is_empty());
    });
}
