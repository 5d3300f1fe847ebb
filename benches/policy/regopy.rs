//! regopy's side of the policy benchmark: one Python process loads the same modules and data
//! into a `regopy.Interpreter` and times its own loop over the plans (`set_input` of the parsed
//! plan as `{"terraform": plan}`, one query that collects every rule's messages, decoding the
//! answer). Two ways of
//! querying: `query`, which hands regopy the query text for every plan, and `bundle`, which
//! compiles the query once with `Interpreter.build` and runs `query_bundle` per plan. Knows
//! nothing of sluice's engine.

use super::samples::{PerPlan, Verdict};
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Messages travel base64-encoded through the query because regopy's printed output does not
/// escape quotes inside strings (the same query as the differential test in tests/policy.rs).
const SCRIPT: &str = r#"
import base64, json, sys, time
started = time.perf_counter_ns()
from regopy import Interpreter
job = json.load(open(sys.argv[1]))
interpreter = Interpreter()
for module in job["modules"]:
    interpreter.add_module(module["path"], module["text"])
interpreter.add_data_json(json.dumps(job["data"]))
parts = []
for rule in job["rules"]:
    reference = "data." + rule
    parts.append(json.dumps(rule) + ": array.concat("
        + "[base64.encode(m) | some m in " + reference + "; is_string(m)], "
        + "[base64.encode(m.msg) | some m in " + reference + "; is_object(m); is_string(m.msg)])")
query = "x := {" + ", ".join(parts) + "}"
bundle = interpreter.build(query, []) if job["mode"] == "bundle" else None
plan_texts = []
for plan_path in job["plans"]:
    with open(plan_path) as plan_file:
        plan_texts.append(plan_file.read())
setup_ns = time.perf_counter_ns() - started
samples = [[] for _ in plan_texts]
verdicts = [None] * len(plan_texts)
for repeat in range(job["repeats"]):
    for index, plan_text in enumerate(plan_texts):
        begin = time.perf_counter_ns()
        interpreter.set_input({"terraform": json.loads(plan_text)})
        output = interpreter.query_bundle(bundle) if bundle is not None else interpreter.query(query)
        text = str(output)
        if text == "undefined" or not output.ok():
            verdict = {"error": text}
        else:
            encoded = json.loads(text)["bindings"]["x"]
            verdict = {"results": {rule: sorted(base64.b64decode(m).decode("utf-8") for m in messages)
                                   for rule, messages in encoded.items() if messages}}
        samples[index].append(time.perf_counter_ns() - begin)
        if repeat == 0:
            verdicts[index] = verdict
print(json.dumps({"setup_ns": setup_ns, "samples_ns": samples, "verdicts": verdicts}))
"#;

/// The Python with regopy: `SLUICE_REGOPY_PYTHON`, else `.venv-regopy/bin/python` as
/// `scripts/setup-regopy.sh` makes it; `None` (with the reason) when it cannot import regopy.
pub fn find_python(repository_root: &Path) -> Result<PathBuf, String> {
    let candidate = std::env::var_os("SLUICE_REGOPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root.join(".venv-regopy/bin/python"));
    let works = Command::new(&candidate)
        .args(["-c", "import regopy"])
        .output()
        .is_ok_and(|output| output.status.success());
    if works {
        Ok(candidate)
    } else {
        Err(format!(
            "{} cannot import regopy; run scripts/setup-regopy.sh (or set SLUICE_REGOPY_PYTHON)",
            candidate.display()
        ))
    }
}

/// The job a run is given: the policy set, the data with the context merged in, and the plans.
pub struct Job<'a> {
    pub modules: &'a [sluice::policy::SourceFile],
    pub data: &'a Value,
    pub rules: &'a [String],
    pub plan_paths: &'a [PathBuf],
}

pub struct Run {
    /// Wall time of the whole Python process, from spawn to exit.
    pub process: Duration,
    /// Start of the process to the first plan: import, modules, data, (bundle), reading plans.
    pub setup: Duration,
    pub timings: PerPlan,
    pub verdicts: Vec<Verdict>,
}

/// Runs the script once in `mode` (`query` or `bundle`) with `repeats` passes over the plans.
pub fn run(python: &Path, job: &Job, mode: &str, repeats: usize) -> anyhow::Result<Run> {
    let work = tempfile::tempdir()?;
    let job_path = work.path().join("job.json");
    let script_path = work.path().join("regopy_bench.py");
    let job_json = json!({
        "mode": mode,
        "repeats": repeats,
        "modules": job.modules.iter().map(|file| json!({"path": file.path, "text": file.text})).collect::<Vec<_>>(),
        "data": job.data,
        "rules": job.rules,
        "plans": job.plan_paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
    });
    std::fs::write(&job_path, job_json.to_string())?;
    std::fs::write(&script_path, SCRIPT)?;
    let started = Instant::now();
    let output = Command::new(python)
        .arg(&script_path)
        .arg(&job_path)
        .output()
        .with_context(|| format!("cannot start {}", python.display()))?;
    let process = started.elapsed();
    anyhow::ensure!(
        output.status.success(),
        "regopy ({mode}) failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_slice(&output.stdout).context("regopy's report is not JSON")?;
    let nanoseconds = |value: &Value| Duration::from_nanos(value.as_u64().unwrap_or(0));
    let samples: Vec<Vec<Duration>> = report["samples_ns"]
        .as_array()
        .context("no samples_ns in regopy's report")?
        .iter()
        .map(|plan| {
            plan.as_array().map_or(Vec::new(), |values| {
                values.iter().map(nanoseconds).collect()
            })
        })
        .collect();
    let verdicts = report["verdicts"]
        .as_array()
        .context("no verdicts in regopy's report")?
        .iter()
        .map(verdict_of)
        .collect();
    Ok(Run {
        process,
        setup: nanoseconds(&report["setup_ns"]),
        timings: PerPlan::from_samples(&samples),
        verdicts,
    })
}

fn verdict_of(line: &Value) -> Verdict {
    if let Some(error) = line.get("error") {
        return Verdict::Error(error.to_string());
    }
    let by_rule: BTreeMap<String, Vec<String>> =
        serde_json::from_value(line["results"].clone()).unwrap_or_default();
    Verdict::Messages(by_rule)
}
