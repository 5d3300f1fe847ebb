//! Policies: Rego under `policies/`, evaluated with `regorus`, compatible with conftest. Any
//! package may define `deny`, `violation` and `warn` rules (also `deny_<name>` and so on) that
//! yield strings or objects with a `msg`; `input` is one document per environment and release
//! with a key per domain (`terraform`: the plan exactly as `terraform show -json` prints it,
//! `kubernetes`, `airflow`, `mlflow`: see `input`), and `data.sluice.context` says where and
//! when it is checked. A module that reads `input.X` for any other `X` is a load error (`lint`).
//! Data files (`**/*.json`, `**/*.yaml`) are merged into `data`. Every error (parse, runtime, a
//! rule yielding something else) names the file and line and fails the check; a failing built-in
//! is such an error (as with `opa eval --strict-builtin-errors`), never a silently undefined
//! rule. `*_test.rego` files hold `test_*` rules run like `opa test`.
//!
//! Only `load` reads files; the rest is pure over sources and values. This module knows nothing
//! of the command line, pull requests, the store or how a plan was made.

mod context;
mod data;
mod engine;
mod error;
mod finding;
mod input;
mod lint;
mod load;
mod location;
mod testing;

pub use context::{Clock, FixedClock, PolicyContext, SystemClock};
pub use data::merge_data;
pub use engine::{PolicySet, RuleRef};
pub use error::{PolicyError, PolicyErrorKind, PolicyErrors};
pub use finding::{Evaluation, Finding, Severity};
pub use input::{DOMAINS, domains_of, is_terraform_plan, terraform_input};
pub use lint::input_references;
pub use load::{PolicySources, SourceFile, load_sources};
pub use location::{
    FindingLocation, ResourceAddress, address_in_text, file_position, parse_address,
    resource_address,
};
pub use testing::{TestOutcome, TestReport, TestResult, run_tests};
