//! GitHub-style expressions for `if:` conditions and `${{ }}` templates: checking their syntax,
//! evaluating them against a context given as a JSON object tree, GitHub's implicit `success()`
//! in conditions, and rendering templates. Pure; knows nothing of where the context comes from
//! (events, jobs, environments) beyond the status of the jobs a job needs.
//!
//! The language: literals (`'text'` with `''` for a quote, numbers, `true`, `false`, `null`),
//! property access (`a.b`, `a['b']`, `a[0]`, `a.*.b`), `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`,
//! `||`, parentheses, and the functions `contains`, `startsWith`, `endsWith`, `format`, `join`,
//! `toJSON`, `fromJSON`, `success`, `failure`, `always`, `cancelled`.

mod eval;
mod flow;
mod format;
mod lex;
mod parse;
mod value;

pub(crate) use eval::StatusFunctions;
use eval::{Evaluator, Missing};
pub use flow::Segment;
use serde_json::Value as Json;

/// Checks an expression's syntax; the error says where and what is wrong.
pub fn check(expression: &str) -> Result<(), String> {
    parse::parse(unwrap_expression(expression)).map(|_| ())
}

/// The context paths whose values (each with everything below it) can be part of the
/// expression's result, with or without `${{ }}` around it: `format('{0}', git.branch)` carries
/// `git.branch`; `github.head_ref == 'main'` carries nothing but a boolean.
pub fn value_reads(expression: &str) -> Result<Vec<Vec<Segment>>, String> {
    parse::parse(unwrap_expression(expression)).map(|node| flow::reads(&node))
}

/// One `${{ expression }}` in a text: the byte range of the whole placeholder and the
/// expression inside it, untrimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placeholder<'a> {
    pub start: usize,
    pub end: usize,
    pub expression: &'a str,
}

/// The `${{ }}` placeholders of a `run:` script or an `env:` value, found exactly as they are
/// rendered (the first `}}` closes one; `{{ }}` without `$` is shell text), so that what a check
/// looks at is what runs.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder<'_>>, String> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(relative_start) = text[offset..].find("${{") {
        let start = offset + relative_start;
        let body_start = start + 3;
        let body_length = text[body_start..]
            .find("}}")
            .ok_or_else(|| format!("unclosed `${{{{` in `{text}`; close it with `}}}}`"))?;
        let end = body_start + body_length + 2;
        found.push(Placeholder {
            start,
            end,
            expression: &text[body_start..body_start + body_length],
        });
        offset = end;
    }
    Ok(found)
}

/// Data an expression can read, as a JSON object tree (`event`, `git`, `github`, `env`, `needs`,
/// `vars`, ...), and the outcome of the jobs the evaluating job needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub values: Json,
    pub job_status: JobStatusView,
}

/// The outcome of the jobs this job needs (or the steps before this step), for `success()`,
/// `failure()` and `cancelled()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStatusView {
    pub any_failed: bool,
    pub any_cancelled: bool,
}

impl From<JobStatusView> for StatusFunctions {
    fn from(view: JobStatusView) -> StatusFunctions {
        StatusFunctions {
            success: !view.any_failed && !view.any_cancelled,
            failure: view.any_failed,
            cancelled: view.any_cancelled,
        }
    }
}

/// Evaluates an expression, with or without `${{ }}` around it. Properties that do not exist
/// read as null, as on GitHub.
pub fn evaluate(expression: &str, context: &Context) -> Result<Json, String> {
    let node = parse::parse(unwrap_expression(expression))?;
    let evaluator = Evaluator {
        root: &context.values,
        status: context.job_status.into(),
        missing: Missing::Null,
    };
    Ok(evaluator.evaluate(&node)?.into_json())
}

/// Evaluates a condition by GitHub's rule: a condition that calls none of the status functions
/// means `success() && (condition)`; an empty condition means `success()`.
pub fn evaluate_condition(expression: &str, context: &Context) -> Result<bool, String> {
    evaluate_condition_with(expression, &context.values, context.job_status.into())
}

/// [`evaluate_condition`] with the status functions' answers given directly, for callers that
/// know more than [`JobStatusView`] holds (a skipped need makes `success()` false but not
/// `failure()`).
pub(crate) fn evaluate_condition_with(
    expression: &str,
    values: &Json,
    status: StatusFunctions,
) -> Result<bool, String> {
    let inner = unwrap_expression(expression);
    if inner.trim().is_empty() {
        return Ok(status.success);
    }
    let node = parse::parse(inner)?;
    if !node.uses_status_function() && !status.success {
        return Ok(false);
    }
    let evaluator = Evaluator {
        root: values,
        status,
        missing: Missing::Null,
    };
    Ok(value::is_truthy(&evaluator.evaluate(&node)?))
}

/// Whether a condition calls `success()`, `failure()`, `always()` or `cancelled()` (and so
/// escapes the implicit `success() &&`). A condition that does not parse uses none.
pub fn uses_status_function(expression: &str) -> bool {
    parse::parse(unwrap_expression(expression)).is_ok_and(|node| node.uses_status_function())
}

/// Replaces every `${{ expr }}` and `{{ expr }}` in the text with the expression's value as text
/// (null is empty, arrays and objects are JSON). A property that does not exist is an error that
/// names it, so that a typo never becomes an empty string.
pub fn render(template: &str, context: &Context) -> Result<String, String> {
    let evaluator = Evaluator {
        root: &context.values,
        status: context.job_status.into(),
        missing: Missing::Error,
    };
    let mut output = String::with_capacity(template.len());
    let mut rest = template;
    let mut consumed = 0;
    while let Some(open) = rest.find("{{") {
        let opener_start = if rest[..open].ends_with('$') {
            open - 1
        } else {
            open
        };
        output.push_str(&rest[..opener_start]);
        let body_start = open + 2;
        let Some(body_length) = find_closing(&rest[body_start..]) else {
            let column = template[..consumed + opener_start].chars().count() + 1;
            return Err(format!(
                "unclosed `{}` at column {column} in `{template}`; close it with `}}}}`",
                &rest[opener_start..body_start]
            ));
        };
        let expression = &rest[body_start..body_start + body_length];
        let node = parse::parse(expression.trim())
            .map_err(|problem| format!("{problem} (in template `{template}`)"))?;
        let value = evaluator
            .evaluate(&node)
            .map_err(|problem| format!("{problem} (in template `{template}`)"))?;
        output.push_str(&value::to_text(&value));
        let after = body_start + body_length + 2;
        consumed += after;
        rest = &rest[after..];
    }
    output.push_str(rest);
    Ok(output)
}

/// The byte length of the expression before its closing `}}`, skipping over `'...'` strings so
/// that `format('{{0}}', x)` does not end early.
fn find_closing(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut in_string = false;
    while index < bytes.len() {
        match bytes[index] {
            b'\'' => in_string = !in_string,
            b'}' if !in_string && bytes.get(index + 1) == Some(&b'}') => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

/// The expression inside `${{ }}` when the whole text is wrapped in it; otherwise the text.
fn unwrap_expression(expression: &str) -> &str {
    let trimmed = expression.trim();
    trimmed
        .strip_prefix("${{")
        .and_then(|inner| inner.strip_suffix("}}"))
        .unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> Context {
        Context {
            values: json!({
                "event": "push",
                "github": { "ref": "refs/heads/main", "event": { "labels": [{ "name": "Bug" }, { "name": "infra" }] } },
                "env": { "REGION": "eu-west-1" },
                "count": 3,
            }),
            job_status: JobStatusView::default(),
        }
    }

    fn check_value(expression: &str, expect: Json) {
        assert_eq!(
            evaluate(expression, &context()).unwrap(),
            expect,
            "expression `{expression}`"
        );
    }

    #[test]
    fn loose_equality_follows_github() {
        check_value("'ABC' == 'abc'", json!(true));
        check_value("1 == '1'", json!(true));
        check_value("'' == 0", json!(true));
        check_value("null == 0", json!(true));
        check_value("true == 1", json!(true));
        check_value("'true' == true", json!(false));
        check_value("'abc' == 'abc '", json!(false));
        check_value("github == github", json!(true));
        check_value("fromJSON('{}') == fromJSON('{}')", json!(false));
        check_value("'x' < 'Y'", json!(true));
        check_value("null <= null", json!(true));
        check_value("'a' < 1", json!(false));
    }

    #[test]
    fn and_or_return_an_operand() {
        check_value("env.MISSING || 'fallback'", json!("fallback"));
        check_value("env.REGION && count", json!(3));
        check_value("'' && 'never'", json!(""));
    }

    #[test]
    fn filtered_arrays_read_every_element() {
        check_value("github.event.labels.*.name", json!(["Bug", "infra"]));
        check_value("contains(github.event.labels.*.name, 'bug')", json!(true));
        check_value(
            "join(github.event.labels.*.name, ', ')",
            json!("Bug, infra"),
        );
    }

    #[test]
    fn render_rejects_unknown_properties_and_keeps_braces_in_strings() {
        let rendered = render("deploy-${{ github.ref }}-{{ env.REGION }}", &context()).unwrap();
        assert_eq!(rendered, "deploy-refs/heads/main-eu-west-1");
        let problem = render("x-${{ env.REGOIN }}", &context()).unwrap_err();
        assert!(
            problem.contains("`env.REGOIN`") && problem.contains("REGION"),
            "{problem}"
        );
        assert_eq!(
            render("${{ format('{{{0}}}', count) }}", &context()).unwrap(),
            "{3}"
        );
        assert!(
            render("${{ github.ref", &context())
                .unwrap_err()
                .contains("unclosed")
        );
    }

    #[test]
    fn condition_without_status_function_requires_success() {
        let failed = Context {
            job_status: JobStatusView {
                any_failed: true,
                any_cancelled: false,
            },
            ..context()
        };
        assert!(!evaluate_condition("event == 'push'", &failed).unwrap());
        assert!(evaluate_condition("${{ failure() && event == 'push' }}", &failed).unwrap());
        assert!(evaluate_condition("always()", &failed).unwrap());
        assert!(evaluate_condition("", &context()).unwrap());
    }
}
