//! `run:` scripts never receive values that whoever pushes or opens a pull request chooses: each
//! such `${{ }}` is refused at its own line and column with the `env:` way to pass it; trusted
//! values, and untrusted ones used as data (`env:`, tags, conditions), load cleanly.

use super::{check, files};
use sluice::config::load_project;

/// A pipeline whose job `use` runs `echo EXPRESSION` on line 26, the placeholder at column 19;
/// the jobs it needs record outputs the way sluice's step kinds do.
fn pipeline(expression: &str) -> String {
    format!(
        "\
name: ci
on: push
env:
  FROM_BRANCH: \"${{{{ git.branch }}}}\"
  FROM_FROM_BRANCH: \"x-${{{{ env.FROM_BRANCH }}}}\"
  REGION: eu-west-1
jobs:
  app:
    steps:
      - build:
          image: 127.0.0.1:5000/app
          tags: [\"{{{{ git.branch }}}}\"]
  named-by-actor:
    steps:
      - build:
          image: \"127.0.0.1:5000/${{{{ github.actor }}}}\"
  plan:
    steps:
      - terraform: {{ environment: dev, command: plan }}
  use:
    needs: [app, named-by-actor, plan]
    env:
      STEP_LEVEL: plain
    steps:
      - name: the script under test
        run: echo {expression}
"
    )
}

fn refused(expression: &str) -> String {
    let project = load_project(&files(&[("workflows/ci.yaml", &pipeline(expression))]));
    let shown: Vec<String> = project
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        project.diagnostics.len() <= 1,
        "one diagnostic at most for `{expression}`: {shown:#?}"
    );
    shown.into_iter().next().unwrap_or_default()
}

#[test]
fn every_untrusted_value_in_run_is_refused_at_its_placeholder() {
    let cases: &[(&str, &str)] = &[
        // expression, what the message says after "in `run:` can be chosen by "
        (
            "${{ git.branch }}",
            "whoever pushes (a branch name may contain shell code); pass it through `env:` (e.g. `env: { BRANCH: \"${{ git.branch }}\" }`) and use \"$BRANCH\"",
        ),
        (
            "${{ git.tag }}",
            "whoever pushes (a tag name may contain shell code); pass it through `env:` (e.g. `env: { TAG: \"${{ git.tag }}\" }`) and use \"$TAG\"",
        ),
        (
            "${{ git.ref }}",
            "whoever pushes (a branch or tag name may contain shell code); pass it through `env:` (e.g. `env: { REF: \"${{ git.ref }}\" }`) and use \"$REF\"",
        ),
        (
            "${{ github.ref }}",
            "whoever pushes (a branch or tag name may contain shell code)",
        ),
        (
            "${{ github.ref_name }}",
            "whoever pushes (a branch or tag name may contain shell code)",
        ),
        (
            "${{ github.head_ref }}",
            "whoever opens a pull request (a branch name may contain shell code)",
        ),
        (
            "${{ github.base_ref }}",
            "whoever pushes (a branch name may contain shell code)",
        ),
        (
            "${{ github.actor }}",
            "whoever pushes (an account name is chosen by its owner)",
        ),
        (
            "${{ github.event.pull_request.title }}",
            "whoever pushes or opens a pull request (titles, bodies, commit messages, names and labels may contain shell code); pass it through `env:` (e.g. `env: { TITLE: \"${{ github.event.pull_request.title }}\" }`) and use \"$TITLE\"",
        ),
        (
            "${{ github.event.head_commit.message }}",
            "whoever pushes or opens a pull request (titles, bodies",
        ),
        (
            "${{ github.event.head_commit.author.email }}",
            "whoever pushes or opens a pull request (titles, bodies",
        ),
        (
            "${{ github.event.comment.body }}",
            "whoever pushes or opens a pull request (titles, bodies",
        ),
        (
            "${{ event.pull_request.body }}",
            "whoever pushes or opens a pull request (titles, bodies",
        ),
        (
            "${{ pull_request.title }}",
            "whoever pushes or opens a pull request (titles, bodies",
        ),
        (
            "${{ GIT.Branch }}",
            "whoever pushes (a branch name may contain shell code)",
        ),
        // Through functions, indexes, filters and operators.
        (
            "${{ format('{0}', git.branch) }}",
            "whoever pushes (it includes `git.branch`: a branch name may contain shell code); pass it through `env:` (e.g. `env: { BRANCH: \"${{ format('{0}', git.branch) }}\" }`) and use \"$BRANCH\"",
        ),
        (
            "${{ toJSON(github) }}",
            "whoever pushes (it includes `github.ref`: a branch or tag name may contain shell code); pass it through `env:` (e.g. `env: { GITHUB: \"${{ toJSON(github) }}\" }`) and use \"$GITHUB\"",
        ),
        (
            "${{ toJSON(git) }}",
            "whoever pushes (it includes `git.branch`",
        ),
        (
            "${{ github['head_ref'] }}",
            "whoever opens a pull request (it includes `github.head_ref`",
        ),
        (
            "${{ github[env.REGION] }}",
            "whoever pushes (it includes `github.ref`",
        ),
        (
            "${{ join(github.event.labels.*.name, ',') }}",
            "whoever pushes or opens a pull request (it includes `github.event.labels.*.name`",
        ),
        (
            "${{ git.tag || 'untagged' }}",
            "whoever pushes (it includes `git.tag`",
        ),
        (
            "${{ fromJSON(toJSON(git)).sha }}",
            "whoever pushes (it includes `git.branch`",
        ),
        // Job outputs that carry text from the pushed code or the configuration's templates.
        (
            "${{ needs.plan.outputs.summary }}",
            "whoever pushes (a job output may carry text from the pushed code, such as a plan summary)",
        ),
        (
            "${{ needs.named-by-actor.outputs.image }}",
            "whoever pushes (a job output may carry text",
        ),
        (
            "${{ needs.*.outputs.digest }}",
            "whoever pushes (a job output may carry text",
        ),
        (
            "${{ toJSON(needs) }}",
            "whoever pushes (it includes `needs`",
        ),
        // Variables set from untrusted values: the step already has them.
        (
            "${{ env.FROM_BRANCH }}",
            "whoever pushes (`env.FROM_BRANCH` is set from `git.branch`: a branch name may contain shell code); use \"$FROM_BRANCH\" instead: the step already has it in its environment",
        ),
        (
            "${{ env.FROM_FROM_BRANCH }}",
            "whoever pushes (`env.FROM_FROM_BRANCH` is set from `git.branch`",
        ),
        (
            "${{ toJSON(env) }}",
            "whoever pushes (`env.FROM_BRANCH` is set from `git.branch`",
        ),
    ];
    for (expression, because) in cases {
        let expected =
            format!("workflows/ci.yaml:26:19: `{expression}` in `run:` can be chosen by {because}");
        let shown = refused(expression);
        assert!(
            shown.starts_with(&expected),
            "`{expression}`:\n  got {shown}\n  want {expected}"
        );
    }
}

#[test]
fn trusted_values_and_booleans_in_run_are_allowed() {
    for expression in [
        "${{ git.sha }}",
        "${{ git.short_sha }}",
        "${{ github.sha }}",
        "${{ github.repository }}",
        "${{ github.repository_owner }}",
        "${{ github.event_name }}",
        "${{ event }}",
        "${{ repository }}",
        "${{ pipeline }}",
        "${{ pull_request.number }}",
        "${{ toJSON(pull_request) }}",
        "${{ secrets.REGISTRY_TOKEN }}",
        "${{ env.REGION }}",
        "${{ env.STEP_LEVEL }}",
        "${{ matrix.python }}",
        "${{ format('{0}-{1}', git.short_sha, pipeline) }}",
        "${{ github.head_ref == 'main' }}",
        "${{ contains(github.event.pull_request.title, 'wip') && 'draft' || 'ready' }}",
        "${{ startsWith(git.ref, 'refs/tags/') }}",
        "${{ needs.app.result }}",
        "${{ needs.app.outputs.digest }}",
        "${{ needs.app.outputs.image }}",
        "${{ needs.app.outputs.tags }}",
        "${{ needs.named-by-actor.outputs.digest }}",
        "${{ needs.plan.outputs.plan_sha256 }}",
        "\"$BRANCH\" {{ git.branch }}",
    ] {
        assert_eq!(refused(expression), "", "`{expression}` should be allowed");
    }
}

#[test]
fn each_placeholder_is_located_on_its_own_line_and_column() {
    check(
        &[(
            "workflows/ci.yaml",
            "\
name: ci
jobs:
  test:
    steps:
      - run: |
          echo \"sha ${{ git.sha }}\"
          echo ${{ git.sha }} ${{ git.branch }} ${{ git.tag }}
      - name: quoted
        run: \"echo '${{ github.head_ref }}'\"
",
        )],
        &[
            "workflows/ci.yaml:7:31: `${{ git.branch }}` in `run:` can be chosen by whoever pushes (a branch name may contain shell code); pass it through `env:` (e.g. `env: { BRANCH: \"${{ git.branch }}\" }`) and use \"$BRANCH\"",
            "workflows/ci.yaml:7:49: `${{ git.tag }}` in `run:` can be chosen by whoever pushes (a tag name may contain shell code); pass it through `env:` (e.g. `env: { TAG: \"${{ git.tag }}\" }`) and use \"$TAG\"",
            "workflows/ci.yaml:9:21: `${{ github.head_ref }}` in `run:` can be chosen by whoever opens a pull request (a branch name may contain shell code); pass it through `env:` (e.g. `env: { HEAD_REF: \"${{ github.head_ref }}\" }`) and use \"$HEAD_REF\"",
        ],
    );
}

#[test]
fn untrusted_values_outside_run_stay_data() {
    check(
        &[(
            "workflows/ci.yaml",
            "\
name: ci
concurrency: deploy-${{ github.head_ref }}
env:
  BRANCH: ${{ git.branch }}
jobs:
  test:
    if: github.head_ref != 'main'
    env:
      TITLE: ${{ github.event.pull_request.title }}
    steps:
      - name: for ${{ git.branch }}
        if: startsWith(git.ref, 'refs/heads/')
        working-directory: ${{ env.BRANCH }}
        env: { ACTOR: \"${{ github.actor }}\", OUTPUTS: \"${{ toJSON(needs) }}\" }
        run: echo \"$BRANCH $TITLE $ACTOR\" {{ git.branch }}
      - build:
          image: 127.0.0.1:5000/app
          tags: [\"{{ git.branch }}\"]
          args: { BRANCH: \"${{ git.branch }}\" }
",
        )],
        &[],
    );
}
