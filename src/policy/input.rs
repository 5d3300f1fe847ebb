//! sluice's policy input: one document per environment and release, one key per domain.
//!
//! ```text
//! input = {"terraform":  <the plan as `terraform show -json` prints it>,
//!          "kubernetes": {"environment", "namespace", "objects": [...]},
//!          "airflow":    {"environment", "dags": [...], "import_errors", "files", "variables", ...},
//!          "mlflow":     {"environment", "tracking_uri", "models": [...]}}
//! ```
//!
//! A domain the environment does not have (or that has nothing to judge) is absent or null, and
//! every policy reads only its own domain, so a Terraform-only input makes no Kubernetes finding.
//! Pure over JSON values.

use serde_json::{Map, Value};

/// The top-level keys of the policy input, in the order they are shown.
pub const DOMAINS: [&str; 4] = ["terraform", "kubernetes", "airflow", "mlflow"];

/// `{"terraform": plan}`: the input of a check that judges a Terraform plan alone.
pub fn terraform_input(plan: &Value) -> Value {
    let mut input = Map::new();
    input.insert("terraform".to_owned(), plan.clone());
    Value::Object(input)
}

/// Whether `document` is a plan as `terraform show -json` prints it (a `format_version` and
/// `resource_changes` or `planned_values`, no domain key) rather than a whole policy input.
pub fn is_terraform_plan(document: &Value) -> bool {
    let Some(object) = document.as_object() else {
        return false;
    };
    object.contains_key("format_version")
        && (object.contains_key("resource_changes") || object.contains_key("planned_values"))
        && !DOMAINS.iter().any(|domain| object.contains_key(*domain))
}

/// The domains an input holds (present and not null), in `DOMAINS` order.
pub fn domains_of(input: &Value) -> Vec<&'static str> {
    DOMAINS
        .into_iter()
        .filter(|domain| input.get(*domain).is_some_and(|value| !value.is_null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plan_is_told_from_a_whole_input() {
        let plan =
            json!({"format_version": "1.2", "terraform_version": "1.9.0", "resource_changes": []});
        assert!(is_terraform_plan(&plan));
        assert!(is_terraform_plan(
            &json!({"format_version": "1.2", "planned_values": {}})
        ));
        assert!(!is_terraform_plan(&terraform_input(&plan)));
        assert!(!is_terraform_plan(&json!({"resource_changes": []})));
        assert!(!is_terraform_plan(
            &json!({"format_version": "1.2", "resource_changes": [], "kubernetes": {}})
        ));
        assert!(!is_terraform_plan(&json!([1, 2])));
        assert_eq!(terraform_input(&plan)["terraform"], plan);
    }

    #[test]
    fn domains_are_the_keys_present_and_not_null() {
        let input =
            json!({"mlflow": {"models": []}, "terraform": {}, "kubernetes": null, "other": 1});
        assert_eq!(domains_of(&input), ["terraform", "mlflow"]);
        assert!(domains_of(&json!({})).is_empty());
    }
}
