//! Unit tests of the Airflow drift comparisons and of a republish on a real folder.

use super::*;
use crate::targets::airflow::VersionedFolder;

fn drift(object: &str, expected: &str, actual: &str) -> Drift {
    Drift {
        object: object.into(),
        expected: expected.into(),
        actual: actual.into(),
    }
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
}

#[test]
fn files_added_changed_and_removed_are_named_with_short_digests() {
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let c = "c".repeat(64);
    let expected: Manifest = [("same.py", &a), ("changed.py", &b), ("lib/gone.py", &c)]
        .iter()
        .map(|(path, digest)| (path.to_string(), digest.to_string()))
        .collect();
    let live: BTreeMap<String, LiveEntry> = [
        ("same.py".to_string(), LiveEntry::File(a.clone())),
        ("changed.py".to_string(), LiveEntry::File(c.clone())),
        ("extra.py".to_string(), LiveEntry::File(b.clone())),
        (
            "link.py".to_string(),
            LiveEntry::Other("symlink to /nowhere".into()),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        file_drifts(&expected, &live),
        [
            drift(
                "dags/changed.py",
                "sha256:bbbbbbbbbbbb",
                "sha256:cccccccccccc"
            ),
            drift("dags/extra.py", "absent", "present (sha256:bbbbbbbbbbbb)"),
            drift("dags/lib/gone.py", "sha256:cccccccccccc", "absent"),
            drift("dags/link.py", "absent", "present (symlink to /nowhere)"),
        ]
    );
    let clean: BTreeMap<String, LiveEntry> = expected
        .iter()
        .map(|(path, digest)| (path.clone(), LiveEntry::File(digest.clone())))
        .collect();
    assert_eq!(file_drifts(&expected, &clean), []);
}

#[test]
fn import_errors_name_the_file_in_the_folder_and_the_exception_line() {
    let error = |filename: &str, trace: &str| ApiImportError {
        filename: filename.into(),
        timestamp: None,
        stack_trace: trace.into(),
    };
    let found = import_error_drifts(
        &[
            error(
                "broken.py",
                "Traceback (most recent call last):\n  File \"broken.py\", line 2\n    def x(:\n\nSyntaxError: invalid syntax\n",
            ),
            error("/srv/dags.versions/0123/lib/a.py", "NameError: boom\nmore"),
            error("/elsewhere/other.py", "ValueError"),
        ],
        "/srv/dags",
        "/srv/dags.versions",
    );
    assert_eq!(
        found,
        [
            drift(
                "import error: broken.py",
                "none",
                "SyntaxError: invalid syntax"
            ),
            drift("import error: lib/a.py", "none", "NameError: boom"),
        ]
    );
}

#[test]
fn dags_to_unpause_drift_when_paused_or_unlisted() {
    let dag = |dag_id: &str, paused: Option<bool>| ApiDag {
        dag_id: dag_id.into(),
        is_paused: paused,
        fileloc: None,
        relative_fileloc: None,
        last_parsed_time: None,
    };
    let unpause = ["a".to_string(), "b".to_string(), "c".to_string()];
    assert_eq!(
        paused_drifts(&unpause, &[dag("a", Some(true)), dag("b", Some(false))]),
        [
            drift("dag a", "unpaused", "paused"),
            drift("dag c", "unpaused", "absent")
        ]
    );
}

#[test]
fn the_live_folder_is_read_exactly_and_a_republish_restores_it_and_older_versions() {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("source");
    write(&source, &[("a.py", "a1"), ("lib/b.py", "b"), ("c.py", "c")]);
    let folder = VersionedFolder {
        folder: scratch.path().join("dags"),
        versions: scratch.path().join("dags.versions"),
        keep: 3,
    };
    let first = folder.deploy(&source).unwrap();
    write(&source, &[("a.py", "a2")]);
    let second = folder.deploy(&source).unwrap();
    let manifest = scan(&source).unwrap();
    let live = read_live(&folder.folder).unwrap();
    assert_eq!(live.manifest(), manifest);
    assert!(file_drifts(&manifest, &live.entries).is_empty());

    // Out of band: a file changed in place (shared with the first version by a hard
    // link), one added, one removed, and Python's bytecode, which is no drift.
    write(
        &folder.folder,
        &[
            ("lib/b.py", "B"),
            ("extra.py", "x"),
            ("lib/__pycache__/b.cpython-312.pyc", "bytecode"),
        ],
    );
    std::fs::remove_file(folder.folder.join("c.py")).unwrap();
    let live = read_live(&folder.folder).unwrap();
    let found = file_drifts(&manifest, &live.entries);
    let short =
        |text: &str| short_digest(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text)));
    assert_eq!(
        found,
        [
            drift("dags/c.py", &short("c"), "absent"),
            drift(
                "dags/extra.py",
                "absent",
                &format!("present ({})", short("x"))
            ),
            drift("dags/lib/b.py", &short("b"), &short("B")),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(folder.version_path(&first.version).join("lib/b.py")).unwrap(),
        "B",
        "the first version shares the changed file"
    );

    let healed = folder
        .republish(&source, &manifest, &live.matching(&manifest))
        .unwrap();
    assert_eq!(healed.version, second.version);
    assert_eq!(folder.live_version().unwrap(), Some(second.version.clone()));
    let live = read_live(&folder.folder).unwrap();
    assert_eq!(live.manifest(), manifest);
    assert!(!folder.folder.join("lib/__pycache__").exists());
    assert_eq!(
        std::fs::read_to_string(folder.version_path(&first.version).join("lib/b.py")).unwrap(),
        "b",
        "the first version is restored too"
    );
    assert_eq!(
        folder.versions(),
        [second.version.clone(), first.version.clone()]
    );
    assert_eq!(folder.read_manifest(&second.version), Some(manifest));
}
