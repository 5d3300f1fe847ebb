//! Tests of the MLflow section and pins parsing: merging, defaults and located errors.

use super::*;
use std::path::PathBuf;

fn environment(name: &str, mlflow: serde_json::Value) -> Result<Environment, TargetError> {
    serde_json::from_value(serde_json::json!({"name": name, "mlflow": mlflow}))
        .map_err(|error| TargetError::Configuration(error.to_string()))
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `Ok(expected plans as JSON)` or `Err(fragments every error message must contain)`.
fn check(
    mlflow: serde_json::Value,
    pins: Option<&str>,
    expect: Result<serde_json::Value, &[&str]>,
) {
    let outcome = environment("staging", mlflow).and_then(|environment| {
        let config = parse_section(&environment)?;
        let config = config.expect("a section");
        let pins = pins
            .map(|text| parse_pins("platform/models/staging.yaml", text))
            .transpose()?;
        merge(
            &config,
            pins.as_ref()
                .map(|pins| ("platform/models/staging.yaml", pins)),
        )
    });
    match (outcome, expect) {
        (Ok(plans), Ok(expected)) => {
            assert_eq!(serde_json::to_value(&plans).unwrap(), expected)
        }
        (Err(error), Err(fragments)) => {
            let message = error.to_string();
            for fragment in fragments {
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
        }
        (outcome, expect) => panic!("got {outcome:?}, expected {expect:?}"),
    }
}

#[test]
fn section_and_pins_merge_into_one_plan_per_model() {
    let section = serde_json::json!({
        "tracking_uri": "http://127.0.0.1:5500",
        "models": {"churn": {"alias": "staging", "min_metric": {"accuracy": 0.8, "f1": 0.5},
                             "restart": ["deployment/serving-api"]}}
    });
    let pins = "environment: staging\nmodels:\n  churn:\n    version: 14\n    alias: staging\n    gates:\n      min_metrics: { accuracy: 0.7, f1: 0.6 }\n      required_tags: [git_sha]\n      max_regression: { accuracy: 0.02 }\n    consumers:\n      - { kind: deployment, namespace: ml, name: serving-api }\n      - { kind: dag, dag_id: batch_score }\n";
    check(
        section.clone(),
        Some(pins),
        Ok(serde_json::json!([{
            "name": "churn", "version": 14, "alias": "staging",
            "gates": {"min_metrics": {"accuracy": 0.8, "f1": 0.6}, "required_tags": ["git_sha"],
                      "max_regression": {"accuracy": 0.02}, "soak_in": null},
            "restart": ["deployment/serving-api"], "keep_previous_as": null, "previous": null
        }])),
    );
    let latest = "environment: staging\nmodels:\n  churn:\n    version: latest\n";
    check(
        section.clone(),
        Some(latest),
        Ok(serde_json::json!([{
            "name": "churn", "version": "latest", "alias": "staging",
            "gates": {"min_metrics": {"accuracy": 0.8, "f1": 0.5}, "required_tags": [],
                      "max_regression": {}, "soak_in": null},
            "restart": ["deployment/serving-api"], "keep_previous_as": null, "previous": null
        }])),
    );
}

#[test]
fn configuration_errors_name_the_file_the_field_and_what_to_do() {
    let base = || serde_json::json!({"tracking_uri": "http://127.0.0.1:5500"});
    let mut unknown = base();
    unknown["tracking_url"] = "x".into();
    check(
        unknown,
        None,
        Err(&["unknown field `tracking_url`", "tracking_uri"]),
    );
    check(
        serde_json::json!({"tracking_uri": "ftp://x", "timeout": "soon", "retries": 0}),
        None,
        Err(&[
            "environments/staging.yaml: `mlflow.tracking_uri`: `ftp://x` is not an http(s) URL",
            "`mlflow.timeout`: `soon` is not a duration",
            "`mlflow.retries`: 0 retries",
        ]),
    );
    check(
        serde_json::json!({"tracking_uri": "http://x", "auth": {"username": "u"}}),
        None,
        Err(&["`mlflow.auth`", "password_env"]),
    );
    check(
        serde_json::json!({"tracking_uri": "http://x", "models": {"churn": {"alias": "staging"}}}),
        None,
        Err(&["mlflow.models.churn has no version", "version: latest"]),
    );
    check(
        serde_json::json!({"tracking_uri": "http://x", "models": {"churn": {"alias": "staging"}}}),
        Some("environment: staging\nmodels:\n  churn:\n    version: 3\n    alias: production\n"),
        Err(&[
            "says alias `staging`",
            "says `production`",
            "make them the same",
        ]),
    );
    check(
        base(),
        Some("environment: production\nmodels: {}\n"),
        Err(&["environment is `production`", "mlflow.pins"]),
    );
    check(
        base(),
        Some("environment: staging\nmodels:\n  churn:\n    version: newest\n    alias: s\n"),
        Err(&[
            "platform/models/staging.yaml",
            "models.churn.version",
            "`newest`",
        ]),
    );
    check(
        serde_json::json!({"tracking_uri": "http://x", "mode": "stage", "models": {"churn": {"alias": "s", "version": 1}}}),
        None,
        Err(&["mode is `stage`", "stage: Staging"]),
    );
    check(
        serde_json::json!({"tracking_uri": "http://x", "models": {"churn": {"alias": "s", "version": 1, "restart": ["serving-api"]}}}),
        None,
        Err(&["`mlflow.models.churn.restart[0]`: `serving-api` is not `kind/name`"]),
    );
}

#[test]
fn the_example_platform_environments_and_pins_parse_and_agree() {
    for name in ["dev", "staging", "production"] {
        let path = repository_root().join(format!("environments/{name}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let environment: Environment = serde_saphyr::from_str(&text).unwrap();
        let config = parse_section(&environment)
            .unwrap()
            .expect("an mlflow section");
        let plans = config.model_plans(&repository_root()).unwrap();
        assert!(
            plans.iter().any(|plan| plan.name == "churn-classifier"),
            "{name}: {plans:?}"
        );
    }
}

#[test]
fn durations_and_version_pins_parse() {
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(VersionPin::parse("latest"), Some(VersionPin::NewestPassing));
    assert_eq!(VersionPin::parse("12"), Some(VersionPin::Exact(12)));
    assert_eq!(VersionPin::parse("twelve"), None);
}
