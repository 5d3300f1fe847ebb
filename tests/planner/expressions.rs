//! Expressions: values, loose comparison, functions, syntax errors, conditions and templates.

use serde_json::{Value as Json, json};
use sluice::config::expr::{self, Context, JobStatusView};

fn expression_values() -> Json {
    json!({
        "event": "merge",
        "github": {
            "ref": "refs/heads/main",
            "event_name": "push",
            "head_ref": "",
            "ref_name": "main",
            "event": { "labels": [{ "name": "deploy" }, { "name": "Infra" }], "number": 7 },
        },
        "env": { "REGION": "eu-west-1", "REPLICAS": "3" },
        "needs": { "build": { "result": "success", "outputs": { "tag": "v1.2.0" } } },
        "matrix": [1, 2, 3],
    })
}

fn check_expr(expression: &str, expect: Json) {
    let context = Context {
        values: expression_values(),
        job_status: JobStatusView::default(),
    };
    let value = expr::evaluate(expression, &context)
        .unwrap_or_else(|problem| panic!("`{expression}` failed: {problem}"));
    assert_eq!(value, expect, "expression `{expression}`");
}

#[test]
fn expressions_evaluate_as_on_github() {
    let cases: &[(&str, Json)] = &[
        ("true", json!(true)),
        ("null", json!(null)),
        ("42", json!(42)),
        ("-9.5", json!(-9.5)),
        ("0xff", json!(255)),
        ("'it''s'", json!("it's")),
        ("${{ event == 'merge' }}", json!(true)),
        ("event == 'MERGE'", json!(true)),
        (
            "github.ref == 'refs/heads/main' && event != 'push'",
            json!(true),
        ),
        ("github['ref']", json!("refs/heads/main")),
        ("GITHUB.REF_NAME", json!("main")),
        ("matrix[1]", json!(2)),
        ("matrix[7]", json!(null)),
        ("env.REPLICAS == 3", json!(true)),
        ("env.REPLICAS > 2", json!(true)),
        ("env.REPLICAS >= 3.0", json!(true)),
        ("'3' == '3.0'", json!(false)),
        ("'a' == 0", json!(false)),
        ("!env.MISSING", json!(true)),
        ("env.MISSING == null", json!(true)),
        ("undefined.deep.property", json!(null)),
        ("github.head_ref || github.ref_name", json!("main")),
        ("(1 < 2) == true", json!(true)),
        ("!(event == 'merge' || false)", json!(false)),
        ("contains(github.event.labels.*.name, 'INFRA')", json!(true)),
        ("contains('Hello world', 'WORLD')", json!(true)),
        ("contains(matrix, '2')", json!(true)),
        ("startsWith(github.ref, 'refs/heads/')", json!(true)),
        ("endsWith(github.ref, '/MAIN')", json!(true)),
        (
            "format('{0}-{1}-{{x}}', env.REGION, github.event.number)",
            json!("eu-west-1-7-{x}"),
        ),
        ("join(matrix, '+')", json!("1+2+3")),
        ("join(matrix)", json!("1,2,3")),
        ("toJSON(matrix)", json!("[\n  1,\n  2,\n  3\n]")),
        ("fromJSON('{\"a\": [true]}').a[0]", json!(true)),
        ("fromJSON(env.REPLICAS) == 3", json!(true)),
        ("needs.build.outputs.tag", json!("v1.2.0")),
        ("success()", json!(true)),
        ("failure()", json!(false)),
        ("always()", json!(true)),
        ("cancelled()", json!(false)),
    ];
    for (expression, expect) in cases {
        check_expr(expression, expect.clone());
    }
}

#[test]
fn expression_syntax_errors_say_where_and_what() {
    let cases: &[(&str, &str)] = &[
        ("event ==", "ends too early"),
        ("event = 'merge'", "column 7"),
        ("event == \"merge\"", "single quotes"),
        ("'open", "unterminated string"),
        ("(a || b", "`)`"),
        ("a b", "unexpected `b` at column 3"),
        ("hashFiles('x')", "unknown function `hashFiles`"),
        ("contains('a')", "takes 2 argument(s), not 1"),
        ("format('{1}', a)", "no argument"),
        ("a.", "property name"),
        ("a[0", "`]`"),
        ("", "empty expression"),
    ];
    for (expression, fragment) in cases {
        let problem = expr::check(expression).expect_err(expression);
        assert!(problem.contains(fragment), "`{expression}`: {problem}");
    }
    assert!(expr::check("${{ github.event.labels.*.name }}").is_ok());
    assert!(expr::check("needs.build-image.result == 'success'").is_ok());
}

#[test]
fn conditions_get_an_implicit_success() {
    let context = |any_failed, any_cancelled| Context {
        values: expression_values(),
        job_status: JobStatusView {
            any_failed,
            any_cancelled,
        },
    };
    let cases: &[(&str, bool, bool, bool)] = &[
        // condition, a need failed, cancelled, runs
        ("event == 'merge'", false, false, true),
        ("event == 'merge'", true, false, false),
        ("event == 'merge'", false, true, false),
        ("always()", true, true, true),
        ("failure()", true, false, true),
        ("failure()", false, false, false),
        ("cancelled()", false, true, true),
        ("!cancelled()", false, false, true),
        ("success() || event == 'merge'", true, false, true),
        ("${{ always() && event == 'push' }}", false, false, false),
    ];
    for (condition, any_failed, any_cancelled, expect) in cases {
        let runs = expr::evaluate_condition(condition, &context(*any_failed, *any_cancelled))
            .unwrap_or_else(|problem| panic!("`{condition}`: {problem}"));
        assert_eq!(
            runs, *expect,
            "condition `{condition}` (failed {any_failed}, cancelled {any_cancelled})"
        );
    }
}

#[test]
fn render_fills_templates_and_names_unknown_properties() {
    let context = Context {
        values: expression_values(),
        job_status: JobStatusView::default(),
    };
    let cases: &[(&str, &str)] = &[
        ("deploy-${{ github.ref }}", "deploy-refs/heads/main"),
        ("{{ env.REGION }}/{{env.REPLICAS}}", "eu-west-1/3"),
        ("no templates here", "no templates here"),
        ("${{ github.head_ref }}", ""),
        ("${{ matrix }}", "[1,2,3]"),
        ("a ${{ format('{{{0}}}', 1) }} b", "a {1} b"),
    ];
    for (template, expect) in cases {
        assert_eq!(
            expr::render(template, &context).as_deref(),
            Ok(*expect),
            "template `{template}`"
        );
    }
    let problem = expr::render("deploy-${{ env.REGOIN }}", &context).unwrap_err();
    assert!(
        problem.contains("unknown property `env.REGOIN`"),
        "{problem}"
    );
    let problem = expr::render("${{ vars.NAME }}", &context).unwrap_err();
    assert!(problem.contains("unknown property `vars`"), "{problem}");
    assert!(
        expr::render("${{ env.REGION", &context)
            .unwrap_err()
            .contains("unclosed")
    );
}
