//! GitHub's filter patterns: every row of the "filter pattern cheat sheet", negation order,
//! errors, and speed.

use sluice::config::glob::{self, Filter};

fn check_glob(patterns: &[&str], value: &str, expect: bool) {
    let owned: Vec<String> = patterns.iter().map(|pattern| pattern.to_string()).collect();
    let filter = Filter::new(&owned).expect("patterns compile");
    assert_eq!(
        filter.matches(value),
        expect,
        "patterns {patterns:?} against `{value}`"
    );
}

#[test]
fn branch_and_tag_patterns_from_the_cheat_sheet() {
    let cases: &[(&str, &str, bool)] = &[
        ("feature/*", "feature/my-branch", true),
        ("feature/*", "feature/your-branch", true),
        ("feature/*", "feature/beta-a/my-branch", false),
        ("feature/**", "feature/beta-a/my-branch", true),
        ("feature/**", "feature/your-branch", true),
        ("feature/**", "feature/mona/the/octocat", true),
        ("main", "main", true),
        ("main", "main2", false),
        (
            "releases/mona-the-octocat",
            "releases/mona-the-octocat",
            true,
        ),
        ("*", "main", true),
        ("*", "releases", true),
        ("*", "releases/v1", false),
        ("**", "all/the/branches", true),
        ("**", "every/tag", true),
        ("*feature", "mona-feature", true),
        ("*feature", "feature", true),
        ("*feature", "ver-10-feature", true),
        ("*feature", "feature-x", false),
        ("v2*", "v2", true),
        ("v2*", "v2.0", true),
        ("v2*", "v2.9", true),
        ("v2*", "v3.0", false),
        ("v[12].[0-9]+.[0-9]+", "v1.10.1", true),
        ("v[12].[0-9]+.[0-9]+", "v2.0.0", true),
        ("v[12].[0-9]+.[0-9]+", "v3.0.0", false),
        ("v[12].[0-9]+.[0-9]+", "v1..1", false),
        ("[CB]at", "Cat", true),
        ("[CB]at", "Bat", true),
        ("[CB]at", "cat", false),
        ("[1-2]00", "100", true),
        ("[1-2]00", "200", true),
        ("[1-2]00", "300", false),
        ("Octo*", "Octocat", true),
    ];
    for (pattern, value, expect) in cases {
        check_glob(&[pattern], value, *expect);
    }
}

#[test]
fn path_patterns_from_the_cheat_sheet() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "README.md", true),
        ("*", "server.rb", true),
        ("*", "docs/README.md", false),
        ("*.jsx?", "page.js", true),
        ("*.jsx?", "page.jsx", true),
        ("**", "all/the/files.md", true),
        ("*.js", "app.js", true),
        ("*.js", "index.js", true),
        ("*.js", "js/index.js", false),
        ("**.js", "index.js", true),
        ("**.js", "js/index.js", true),
        ("**.js", "src/js/app.js", true),
        ("docs/*", "docs/README.md", true),
        ("docs/*", "docs/file.txt", true),
        ("docs/*", "docs/mona/octocat.txt", false),
        ("docs/**", "docs/README.md", true),
        ("docs/**", "docs/mona/octocat.txt", true),
        ("docs/**", "src/docs/a.md", false),
        ("docs/**/*.md", "docs/README.md", true),
        ("docs/**/*.md", "docs/mona/hello-world.md", true),
        ("docs/**/*.md", "docs/a/markdown/file.md", true),
        ("docs/**/*.md", "docs/a/file.txt", false),
        ("**/docs/**", "docs/hello.md", true),
        ("**/docs/**", "dir/docs/my-file.txt", true),
        ("**/docs/**", "space/docs/plan/space.doc", true),
        ("**/docs/**", "mydocs/x.md", false),
        ("**/README.md", "README.md", true),
        ("**/README.md", "js/README.md", true),
        ("**/*src/**", "a/src/app.js", true),
        ("**/*src/**", "my-src/code/js/app.js", true),
        ("**/*-post.md", "my-post.md", true),
        ("**/*-post.md", "path/their-post.md", true),
        ("**/migrate-*.sql", "migrate-10909.sql", true),
        ("**/migrate-*.sql", "db/migrate-v1.0.sql", true),
        ("**/migrate-*.sql", "db/sept/migrate-v1.sql", true),
        ("\\*.md", "*.md", true),
        ("\\*.md", "a.md", false),
        ("a\\[1\\]", "a[1]", true),
    ];
    for (pattern, value, expect) in cases {
        check_glob(&[pattern], value, *expect);
    }
}

#[test]
fn the_last_matching_pattern_decides() {
    let excluded: &[&str] = &["*.md", "!README.md"];
    check_glob(excluded, "hello.md", true);
    check_glob(excluded, "README.md", false);
    check_glob(excluded, "docs/hello.md", false);
    let included_again: &[&str] = &["*.md", "!README.md", "README*"];
    check_glob(included_again, "hello.md", true);
    check_glob(included_again, "README.md", true);
    check_glob(included_again, "README.doc", true);
    check_glob(&["!README.md", "*.md"], "README.md", true);
    check_glob(&[], "anything", false);
    check_glob(&["!main"], "feature", false);
}

#[test]
fn pattern_errors_name_the_pattern_and_what_to_do() {
    let cases: &[(&str, &str)] = &[
        ("v[12", "unclosed `[`"),
        ("+x", "no single character"),
        ("**?", "`?`"),
        ("[9-0]", "invalid range"),
        ("[a-9]", "invalid range"),
        ("a\\", "lone `\\`"),
        ("", "empty pattern"),
        ("!", "negates nothing"),
    ];
    for (pattern, fragment) in cases {
        let problem = glob::check(pattern).expect_err(pattern);
        assert!(problem.contains(fragment), "`{pattern}`: {problem}");
    }
    let problem = Filter::new(&["main".into(), "v[1".into(), "x+?".into()]).unwrap_err();
    assert!(
        problem.contains("`v[1`") && problem.contains("`x+?`"),
        "{problem}"
    );
}

#[test]
fn a_list_of_only_negative_patterns_is_reported() {
    let only_negative = vec!["!main".to_string(), "!release/**".to_string()];
    let problems = glob::check_list(&only_negative).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("at least one positive pattern"),
        "{}",
        problems[0]
    );
    assert!(glob::check_list(&["**".into(), "!main".into()]).is_ok());
    let both = glob::check_list(&["!a[".into()]).unwrap_err();
    assert_eq!(both.len(), 2, "{both:?}");
}

#[test]
fn matching_fifty_thousand_paths_against_ten_patterns_is_fast() {
    let patterns: Vec<String> = [
        "**/docs/**",
        "platform/**",
        "policies/**/*.rego",
        "**/README.md",
        "!docs/**",
        "**.py",
        "**/*src/**",
        "v[12].[0-9]+.[0-9]+",
        "**/migrate-*.sql",
        "*.jsx?",
    ]
    .iter()
    .map(|pattern| pattern.to_string())
    .collect();
    let filter = Filter::new(&patterns).unwrap();
    let paths: Vec<String> = (0..50_000)
        .map(|index| match index % 5 {
            0 => format!("platform/dags/team-{index}/dag_{index}.py"),
            1 => format!("docs/guide/chapter-{index}/README.md"),
            2 => format!("src/module{index}/deeply/nested/file{index}.rs"),
            3 => format!("policies/terraform/rule_{index}.rego"),
            _ => format!("services/api/handlers/v{index}/handler.go"),
        })
        .collect();
    let started = std::time::Instant::now();
    let matched = paths.iter().filter(|path| filter.matches(path)).count();
    let elapsed = started.elapsed();
    assert_eq!(matched, 30_000);
    // Milliseconds in a release build; the bound leaves room for an unoptimised test build on
    // a busy machine while still catching a matcher that backtracks exponentially.
    assert!(
        elapsed < std::time::Duration::from_secs(3),
        "took {elapsed:?}"
    );
}
