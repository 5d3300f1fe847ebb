//! Pull requests from forks. A fork's pull request runs without secrets, can never apply or
//! deploy, and its pipeline files are read from the base branch, so a fork cannot change what
//! runs with the base repository's privileges. Pure decisions over the pull-request JSON (a
//! webhook's `pull_request` object or the API's answer).

use serde_json::Value;

/// True when the head branch lives in another repository than the base (or the head
/// repository is gone, as when a fork was deleted).
pub fn is_fork_pull_request(pull_request: &Value) -> bool {
    let head = pull_request
        .pointer("/head/repo/full_name")
        .and_then(Value::as_str);
    let base = pull_request
        .pointer("/base/repo/full_name")
        .and_then(Value::as_str);
    match (head, base) {
        (Some(head), Some(base)) => !head.eq_ignore_ascii_case(base),
        // No head repository: a deleted fork.
        (None, Some(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(pull_request: Value, expect: bool) {
        assert_eq!(
            is_fork_pull_request(&pull_request),
            expect,
            "{pull_request}"
        );
    }

    #[test]
    fn a_fork_is_a_head_in_another_repository() {
        let same =
            json!({"head": {"repo": {"full_name": "o/r"}}, "base": {"repo": {"full_name": "o/r"}}});
        let other =
            json!({"head": {"repo": {"full_name": "x/r"}}, "base": {"repo": {"full_name": "o/r"}}});
        let deleted = json!({"head": {"repo": null}, "base": {"repo": {"full_name": "o/r"}}});
        let case =
            json!({"head": {"repo": {"full_name": "O/R"}}, "base": {"repo": {"full_name": "o/r"}}});
        check(same, false);
        check(other, true);
        check(deleted, true);
        check(case, false);
    }
}
