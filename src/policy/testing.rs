//! Rego unit tests, run like `opa test`: every rule named `test_*` in the policies and their
//! `*_test.rego` files passes when it is defined and not `false`, fails otherwise, and errors
//! when evaluating it fails; `todo_test_*` rules are skipped. Pure over sources; knows nothing
//! of how results are printed.

use super::engine::compile_modules;
use super::error::{PolicyError, PolicyErrorKind, PolicyErrors};
use super::load::{PolicySources, SourceFile};
use serde::Serialize;

/// What happened to one test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "error")]
pub enum TestOutcome {
    Pass,
    Fail,
    Skip,
    Error(PolicyError),
}

/// One test rule and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestResult {
    pub package: String,
    pub name: String,
    pub file: String,
    pub line: u32,
    #[serde(flatten)]
    pub outcome: TestOutcome,
}

impl TestResult {
    /// `terraform.tags_test.test_empty_tag_is_denied`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }
}

/// Every test, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
}

impl TestReport {
    fn count(&self, wanted: fn(&TestOutcome) -> bool) -> usize {
        self.results
            .iter()
            .filter(|result| wanted(&result.outcome))
            .count()
    }

    pub fn passed_count(&self) -> usize {
        self.count(|outcome| matches!(outcome, TestOutcome::Pass))
    }

    pub fn failed_count(&self) -> usize {
        self.count(|outcome| matches!(outcome, TestOutcome::Fail))
    }

    pub fn error_count(&self) -> usize {
        self.count(|outcome| matches!(outcome, TestOutcome::Error(_)))
    }

    pub fn skipped_count(&self) -> usize {
        self.count(|outcome| matches!(outcome, TestOutcome::Skip))
    }

    /// True when no test failed or errored.
    pub fn passed(&self) -> bool {
        self.failed_count() == 0 && self.error_count() == 0
    }
}

/// Compiles policies and tests together and runs every test rule. Parse errors stop the run
/// (there is nothing sound to test) and are all reported.
pub fn run_tests(sources: &PolicySources) -> Result<TestReport, PolicyErrors> {
    let files: Vec<&SourceFile> = sources.modules.iter().chain(&sources.tests).collect();
    let (engine, declared) = compile_modules(&files, &sources.data)?;
    let mut report = TestReport::default();
    for rule in declared {
        let skipped = rule.name.starts_with("todo_test_");
        if !skipped && !rule.name.starts_with("test_") {
            continue;
        }
        let already_run = report
            .results
            .iter()
            .any(|result| result.package == rule.package && result.name == rule.name);
        if already_run {
            continue;
        }
        let outcome = if skipped {
            TestOutcome::Skip
        } else {
            let mut test_engine = engine.clone();
            match test_engine.eval_rule(format!("data.{}.{}", rule.package, rule.name)) {
                Ok(regorus::Value::Undefined | regorus::Value::Bool(false)) => TestOutcome::Fail,
                Ok(_) => TestOutcome::Pass,
                Err(error) => TestOutcome::Error(
                    PolicyError::from_engine(
                        PolicyErrorKind::Runtime,
                        &error,
                        &rule.file,
                        Some(rule.line),
                    )
                    .with_rule(format!("{}.{}", rule.package, rule.name)),
                ),
            }
        };
        report.results.push(TestResult {
            package: rule.package,
            name: rule.name,
            file: rule.file,
            line: rule.line,
            outcome,
        });
    }
    Ok(report)
}
