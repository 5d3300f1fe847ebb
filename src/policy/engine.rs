//! A compiled policy set on `regorus`: parses every module (Rego v1, falling back to v0 for
//! conftest policies written before OPA 1.0), finds the conftest rules of every package, and
//! evaluates them against an input and a context. Pure: sources in, findings and errors out;
//! knows nothing of files, plans or the command line.

use super::context::PolicyContext;
use super::error::{PolicyError, PolicyErrorKind, PolicyErrors};
use super::finding::{Evaluation, Severity, findings_of};
use super::load::{PolicySources, SourceFile};
use regorus::unstable::{Rule, RuleHead};
use serde::Deserialize;
use serde_json::Value;

/// A rule the check evaluates: `package.name`, with where it is first defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// The package without the `data.` prefix, e.g. `terraform.tags`.
    pub package: String,
    pub name: String,
    pub severity: Severity,
    pub file: String,
    pub line: u32,
}

impl RuleRef {
    /// `terraform.tags.deny`, the name shown beside each finding.
    pub fn path(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }

    /// `data.terraform.tags.deny`, the reference the engine evaluates.
    pub fn query(&self) -> String {
        format!("data.{}.{}", self.package, self.name)
    }
}

/// A rule head found in a module: name, package and location. Shared with the test runner.
#[derive(Clone, Debug)]
pub(super) struct DeclaredRule {
    pub package: String,
    pub name: String,
    pub file: String,
    pub line: u32,
}

/// Policies ready to evaluate. Cheap to clone; evaluating does not change it.
#[derive(Clone)]
pub struct PolicySet {
    engine: regorus::Engine,
    rules: Vec<RuleRef>,
}

impl PolicySet {
    /// Compiles the policy modules (not the tests) with the data. Every parse error is
    /// reported, each with its file and line.
    pub fn compile(sources: &PolicySources) -> Result<PolicySet, PolicyErrors> {
        let modules: Vec<&SourceFile> = sources.modules.iter().collect();
        let (engine, declared) = compile_modules(&modules, &sources.data)?;
        let mut rules: Vec<RuleRef> = Vec::new();
        for rule in declared {
            let Some(severity) = Severity::of_rule(&rule.name) else {
                continue;
            };
            let already_known = rules
                .iter()
                .any(|known| known.package == rule.package && known.name == rule.name);
            if !already_known {
                rules.push(RuleRef {
                    package: rule.package,
                    name: rule.name,
                    severity,
                    file: rule.file,
                    line: rule.line,
                });
            }
        }
        rules.sort_by_key(RuleRef::path);
        Ok(PolicySet { engine, rules })
    }

    /// The `deny`/`violation`/`warn` rules found, sorted by `package.rule`.
    pub fn rules(&self) -> &[RuleRef] {
        &self.rules
    }

    /// Evaluates every rule against `input` (sluice's policy input: `{"terraform": plan, ...}`,
    /// see `policy::input`) with `data.sluice.context` set from `context` and the domains the
    /// input holds.
    /// Errors do not stop the check: every rule is evaluated, and each error is kept in the
    /// evaluation, which then does not pass.
    pub fn evaluate(&self, input: &Value, context: &PolicyContext) -> Evaluation {
        let mut evaluation = Evaluation {
            rules_evaluated: self.rules.len(),
            ..Evaluation::default()
        };
        let mut engine = self.engine.clone();
        let first_file = self.rules.first().map_or("policies", |rule| &rule.file);
        if let Err(error) = engine.add_data(to_engine_value(&context.to_data_for(input))) {
            evaluation.errors.push(PolicyError::new(
                PolicyErrorKind::Data,
                first_file,
                format!(
                    "cannot set data.sluice.context: {error:#}; data files must not define `sluice.context`"
                ),
            ));
            return evaluation;
        }
        engine.set_input(to_engine_value(input));
        for rule in &self.rules {
            let rule_path = rule.path();
            let value = match engine.eval_rule(rule.query()) {
                Ok(value) => value,
                Err(error) => {
                    evaluation.errors.push(
                        PolicyError::from_engine(
                            PolicyErrorKind::Runtime,
                            &error,
                            &rule.file,
                            Some(rule.line),
                        )
                        .with_rule(&rule_path),
                    );
                    continue;
                }
            };
            if value == regorus::Value::Undefined {
                continue;
            }
            let json = serde_json::to_value(&value).unwrap_or(Value::Null);
            match findings_of(rule.severity, &rule_path, &json) {
                Ok(findings) => evaluation.findings.extend(findings),
                Err(message) => {
                    let mut error = PolicyError::new(PolicyErrorKind::Result, &rule.file, message)
                        .with_rule(&rule_path);
                    error.line = Some(rule.line);
                    evaluation.errors.push(error);
                }
            }
        }
        evaluation.findings.sort_by(|left, right| {
            (left.severity, &left.rule, &left.message).cmp(&(
                right.severity,
                &right.rule,
                &right.message,
            ))
        });
        evaluation.findings.dedup();
        evaluation
    }
}

/// Converts a JSON value without copying it first.
pub(super) fn to_engine_value(value: &Value) -> regorus::Value {
    regorus::Value::deserialize(value).unwrap_or(regorus::Value::Undefined)
}

/// Parses `files` into one engine with `data`, and lists every rule head they declare. All
/// parse errors are collected; compile errors across modules (a bad import, a rule defined two
/// incompatible ways) are found by preparing the engine once.
pub(super) fn compile_modules(
    files: &[&SourceFile],
    data: &Value,
) -> Result<(regorus::Engine, Vec<DeclaredRule>), PolicyErrors> {
    let mut engine = regorus::Engine::new();
    let mut errors = Vec::new();
    let mut declared = Vec::new();
    for file in files {
        match add_module(&mut engine, file) {
            Ok(package) => declared.extend(declared_rules(&mut engine, &package, &file.path)),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    if data.as_object().is_some_and(|map| !map.is_empty())
        && let Err(error) = engine.add_data(to_engine_value(data))
    {
        return Err(PolicyErrors(vec![PolicyError::new(
            PolicyErrorKind::Data,
            files.first().map_or("policies", |file| &file.path),
            format!("the data files cannot be loaded: {error:#}"),
        )]));
    }
    if let Err(error) = engine.eval_query("true".to_owned(), false) {
        let fallback = files.first().map_or("policies", |file| &file.path);
        return Err(PolicyErrors(vec![PolicyError::from_engine(
            PolicyErrorKind::Parse,
            &error,
            fallback,
            None,
        )]));
    }
    Ok((engine, declared))
}

/// Adds one module, as Rego v1 first and as v0 if only v0 accepts it. Returns its package
/// without `data.`. A file neither accepts is reported with the v1 error.
fn add_module(engine: &mut regorus::Engine, file: &SourceFile) -> Result<String, PolicyError> {
    engine.set_rego_v0(false);
    let v1_error = match engine.add_policy(file.path.clone(), file.text.clone()) {
        Ok(package) => return Ok(strip_data(package)),
        Err(error) => error,
    };
    engine.set_rego_v0(true);
    let v0_result = engine.add_policy(file.path.clone(), file.text.clone());
    engine.set_rego_v0(false);
    match v0_result {
        Ok(package) => Ok(strip_data(package)),
        Err(_) => Err(PolicyError::from_engine(
            PolicyErrorKind::Parse,
            &v1_error,
            &file.path,
            None,
        )),
    }
}

fn strip_data(package: String) -> String {
    package
        .strip_prefix("data.")
        .map(str::to_owned)
        .unwrap_or(package)
}

/// The rule heads of the module just added (the last one), functions left out.
fn declared_rules(engine: &mut regorus::Engine, package: &str, file: &str) -> Vec<DeclaredRule> {
    let Some(module) = engine.get_modules().last() else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for rule in &module.policy {
        let (reference, span) = match rule.as_ref() {
            Rule::Spec { head, span, .. } => match head {
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, span),
                RuleHead::Func { .. } => continue,
            },
            Rule::Default {
                refr, args, span, ..
            } => {
                if !args.is_empty() {
                    continue;
                }
                (refr, span)
            }
        };
        let head_text = reference.span().text();
        let name = head_text
            .split(['[', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if name.is_empty() {
            continue;
        }
        rules.push(DeclaredRule {
            package: package.to_owned(),
            name: name.to_owned(),
            file: file.to_owned(),
            line: span.line,
        });
    }
    rules
}
