//! Checks across the environment files: unique names, `after` naming a real environment, no
//! cycles in the promotion order, valid gate durations, and what each target's section says is
//! wrong with it (`config::section`). Pure; trees are used only to point at the right line.

use crate::config::drift::FieldPart;
use crate::config::graph::{cycles, spell};
use crate::config::located::{PathPart, find};
use crate::config::messages::{at, did_you_mean};
use crate::config::workflow::parse_duration;
use crate::config::yaml::Node;
use crate::config::{Diagnostic, environment::Environment};

/// `environments` holds (file path, environment, tree), in path order.
pub fn check_environments(environments: &[(&str, &Environment, &Node)]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let names: Vec<&str> = unique_names(environments);
    for (index, (path, environment, tree)) in environments.iter().enumerate() {
        let name = environment.name.as_str();
        let label = if name.is_empty() {
            "an environment without a name".to_string()
        } else {
            format!("environment `{name}`")
        };
        let earlier = environments[..index]
            .iter()
            .find(|(_, other, _)| !name.is_empty() && other.name == name);
        if let Some((earlier_path, _, earlier_tree)) = earlier {
            let first = find(earlier_tree, &["name".into()]).value_position;
            diagnostics.push(at(
                path,
                find(tree, &["name".into()]).value_position,
                format!("duplicate environment name `{name}`"),
                Some(format!(
                    "{earlier_path}:{}:{} already uses it; give each environment its own `name`",
                    first.line, first.column
                )),
            ));
        }
        if let Some(after) = &environment.after {
            let after_position = find(tree, &["after".into()]).value_position;
            if after == name {
                diagnostics.push(at(
                    path,
                    after_position,
                    format!("{label} comes after itself"),
                    Some("name the environment that precedes it, or remove `after`".to_string()),
                ));
            } else if !names.contains(&after.as_str()) {
                diagnostics.push(at(
                    path,
                    after_position,
                    format!("{label} comes after unknown environment `{after}`"),
                    Some(did_you_mean(after, names.iter().copied(), "environments")),
                ));
            }
        }
        if let Some(soak) = &environment.gates.soak
            && let Err(problem) = parse_duration(soak)
        {
            diagnostics.push(at(
                path,
                find(tree, &["gates".into(), "soak".into()]).value_position,
                format!("`gates.soak` in {label}: {problem}"),
                None,
            ));
        }
        for (index, window) in environment.gates.freeze.iter().enumerate() {
            if let Err(problem) = window.bounds() {
                diagnostics.push(at(
                    path,
                    find(tree, &["gates".into(), "freeze".into(), index.into()]).value_position,
                    format!("`gates.freeze[{index}]` in {label}: {problem}"),
                    Some("write `from: friday 12:00`, `to: monday 06:00`, `timezone: Europe/Amsterdam`".to_string()),
                ));
            }
        }
        let configured = environment.targets.configured_names();
        for problem in environment
            .drift
            .problems(&configured, crate::targets::TargetSections::NAMES)
        {
            let mut parts: Vec<PathPart> = vec!["drift".into()];
            let mut place = "drift".to_owned();
            for part in &problem.field {
                match part {
                    FieldPart::Key(key) => {
                        parts.push((*key).into());
                        place.push_str(&format!(".{key}"));
                    }
                    FieldPart::Index(index) => {
                        parts.push((*index).into());
                        place.push_str(&format!("[{index}]"));
                    }
                }
            }
            diagnostics.push(at(
                path,
                find(tree, &parts).value_position,
                format!("`{place}` in {label}: {}", problem.message),
                problem.hint.clone(),
            ));
        }
        for (section, problem) in environment.targets.problems() {
            let mut parts: Vec<PathPart> = vec![section.into()];
            parts.extend(problem.field.iter().cloned());
            diagnostics.push(at(
                path,
                find(tree, &parts).position(),
                format!(
                    "`{}` in {label}: {}",
                    problem.place(section),
                    problem.message
                ),
                problem.hint.clone(),
            ));
        }
    }
    diagnostics.extend(after_cycles(environments));
    diagnostics
}

fn unique_names<'a>(environments: &[(&str, &'a Environment, &Node)]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for (_, environment, _) in environments {
        if !environment.name.is_empty() && !names.contains(&environment.name.as_str()) {
            names.push(&environment.name);
        }
    }
    names
}

/// One diagnostic per cycle, at the `after` of the cycle's first environment.
fn after_cycles(environments: &[(&str, &Environment, &Node)]) -> Vec<Diagnostic> {
    let mut waits_for: Vec<(String, Vec<String>)> = Vec::new();
    for (_, environment, _) in environments {
        if waits_for.iter().any(|(name, _)| *name == environment.name) {
            continue;
        }
        waits_for.push((
            environment.name.clone(),
            environment.after.iter().cloned().collect(),
        ));
    }
    cycles(&waits_for)
        .iter()
        .filter_map(|cycle| {
            let (path, _, tree) = environments
                .iter()
                .find(|(_, environment, _)| environment.name == cycle[0])?;
            Some(at(
                path,
                find(tree, &["after".into()]).value_position,
                format!("cycle in `after`: {}", spell(cycle)),
                Some(
                    "`a -> b` means `b` comes after `a`; the first environment must have no `after`"
                        .to_string(),
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::recover::decode;
    use crate::config::yaml::parse;

    fn check(files: &[(&str, &str)], expect: &[&str]) {
        let decoded: Vec<(&str, Environment, Node)> = files
            .iter()
            .map(|(path, text)| {
                let mut tree = parse(text).expect("test YAML parses");
                let (environment, problems) = decode::<Environment>(&mut tree);
                assert_eq!(problems, vec![], "test environment decodes cleanly");
                (*path, environment.expect("test environment decodes"), tree)
            })
            .collect();
        let borrowed: Vec<(&str, &Environment, &Node)> = decoded
            .iter()
            .map(|(path, environment, tree)| (*path, environment, tree))
            .collect();
        let shown: Vec<String> = check_environments(&borrowed)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, expect);
    }

    #[test]
    fn a_sound_promotion_order_passes() {
        check(
            &[
                ("environments/dev.yaml", "name: dev\n"),
                (
                    "environments/production.yaml",
                    "name: production\nafter: staging\n",
                ),
                (
                    "environments/staging.yaml",
                    "name: staging\nafter: dev\ngates: {soak: 10m}\nterraform: {dir: infra/staging}\n",
                ),
            ],
            &[],
        );
    }

    #[test]
    fn after_must_name_another_environment() {
        check(
            &[
                ("environments/dev.yaml", "name: dev\nafter: dev\n"),
                ("environments/staging.yaml", "name: staging\nafter: dve\n"),
            ],
            &[
                "environments/dev.yaml:2:8: environment `dev` comes after itself\n  hint: name the environment that precedes it, or remove `after`",
                "environments/staging.yaml:2:8: environment `staging` comes after unknown environment `dve`\n  hint: did you mean `dev`? environments: dev, staging",
            ],
        );
    }

    #[test]
    fn a_freeze_window_that_cannot_be_read_is_reported_where_it_is() {
        let project = crate::config::load_project(&[crate::config::SourceFile {
            path: "environments/production.yaml".into(),
            contents: b"name: production\ngates:\n  freeze:\n    - { from: friday noon, to: monday 06:00 }\n".to_vec(),
        }]);
        let messages: Vec<String> = project
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].starts_with("environments/production.yaml:4:"),
            "{messages:?}"
        );
        assert!(
            messages[0].contains("`noon` in `friday noon` is not a time HH:MM"),
            "{messages:?}"
        );
    }

    #[test]
    fn cycles_duplicates_and_bad_soak_are_reported() {
        check(
            &[
                ("environments/a.yaml", "name: dev\nafter: staging\n"),
                (
                    "environments/b.yaml",
                    "name: staging\nafter: dev\ngates:\n  soak: 10 minutes\n",
                ),
                ("environments/c.yaml", "name: dev\n"),
            ],
            &[
                "environments/b.yaml:4:9: `gates.soak` in environment `staging`: invalid duration `10 minutes`: unknown unit ` minutes`; use ms, s, m, h or d",
                "environments/c.yaml:1:7: duplicate environment name `dev`\n  hint: environments/a.yaml:1:7 already uses it; give each environment its own `name`",
                "environments/a.yaml:2:8: cycle in `after`: dev -> staging -> dev\n  hint: `a -> b` means `b` comes after `a`; the first environment must have no `after`",
            ],
        );
    }

    #[test]
    fn a_drift_section_that_heals_terraform_is_refused_at_its_line() {
        check(
            &[(
                "environments/staging.yaml",
                "name: staging\nkubernetes: {namespace: ml, manifests: k8s}\ndrift:\n  interval: 10 minutes\n  heal: [kubernetes, terraform]\n",
            )],
            &[
                "environments/staging.yaml:4:13: `drift.interval` in environment `staging`: invalid duration `10 minutes`: unknown unit ` minutes`; use ms, s, m, h or d\n  hint: write a duration such as `10m` or `1h`, or `off`",
                "environments/staging.yaml:5:22: `drift.heal[1]` in environment `staging`: terraform is never healed automatically\n  hint: remove it: a drifted Terraform environment gets a plan stored for review instead",
            ],
        );
    }
}
