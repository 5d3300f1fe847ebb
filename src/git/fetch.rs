//! Fetching a mirror from its remote: in process through libgit2 where this build supports the
//! url's transport, else through the `git` command (this libgit2 is built without https and ssh,
//! and the git command brings the user's ssh configuration and agent with it). Afterwards `HEAD`
//! follows the remote's default branch. Owns credentials; never logs or returns a token.

use super::remote_url::{self, Transport, UrlKind};
use super::{GitError, Mirror, REMOTE_NAME};
use git2::{AutotagOption, Cred, CredentialType, FetchOptions, FetchPrune, RemoteCallbacks};
use git2::{ErrorCode, Repository};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The environment variable holding an https token; read at each fetch, never logged.
pub(crate) const TOKEN_VARIABLE: &str = "SLUICE_GIT_TOKEN";

/// The user name GitHub expects beside an installation or personal access token.
const TOKEN_USER_NAME: &str = "x-access-token";

/// A credential helper for the git command that answers with the token from the environment,
/// so the token is never on a command line nor in a config file.
const TOKEN_CREDENTIAL_HELPER: &str = "!f() { test \"$1\" = get && echo username=x-access-token && echo \"password=$SLUICE_GIT_TOKEN\"; }; f";

pub(crate) fn fetch(mirror: &Mirror) -> Result<(), GitError> {
    let version = git2::Version::get();
    let transport = remote_url::choose_transport(
        remote_url::classify(mirror.url()),
        version.https(),
        version.ssh(),
    );
    if let Some(missing_path) = missing_local_path(mirror.url()) {
        let message = format!("there is no repository at {}", missing_path.display());
        return Err(fetch_error(mirror, &message));
    }
    let handle = mirror.handle()?;
    let remote_default_branch = match transport {
        Transport::Libgit2 => fetch_with_libgit2(mirror, &handle)?,
        Transport::GitCommand => {
            fetch_with_git_command(mirror)?;
            None
        }
    };
    point_head_at_default_branch(&handle, remote_default_branch)
        .map_err(|error| mirror.repository_error("point HEAD at the default branch", error))
}

/// libgit2 reports a missing local path as an "unsupported URL protocol"; say what is wrong.
fn missing_local_path(url: &str) -> Option<PathBuf> {
    let path = match remote_url::classify(url) {
        UrlKind::LocalPath => PathBuf::from(url),
        UrlKind::File => PathBuf::from(url.get("file://".len()..)?),
        _ => return None,
    };
    (!path.exists()).then_some(path)
}

/// The message on one line (git prints several), credentials redacted.
fn fetch_error(mirror: &Mirror, message: &str) -> GitError {
    let one_line_message = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    GitError::Fetch {
        repository: mirror.repository().to_string(),
        url: remote_url::redact_credentials(mirror.url()),
        message: remote_url::redact_credentials(&one_line_message),
    }
}

/// Fetches with the configured refspecs; returns the remote's default branch (`refs/heads/...`)
/// when the remote advertised one.
fn fetch_with_libgit2(mirror: &Mirror, handle: &Repository) -> Result<Option<String>, GitError> {
    let mut remote = handle
        .find_remote(REMOTE_NAME)
        .map_err(|error| mirror.repository_error("find the remote origin", error))?;
    let mut fetch_options = FetchOptions::new();
    fetch_options
        .remote_callbacks(credential_callbacks())
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    let no_refspecs_so_the_configured_ones: &[&str] = &[];
    remote
        .fetch(
            no_refspecs_so_the_configured_ones,
            Some(&mut fetch_options),
            Some("sluice: fetch"),
        )
        .map_err(|error| fetch_error(mirror, error.message()))?;
    // Available after the connection closed; an old server may not advertise it.
    let default_branch = remote
        .default_branch()
        .ok()
        .and_then(|buffer| buffer.as_str().ok().map(str::to_string));
    Ok(default_branch)
}

/// The token for https, the ssh agent then the usual key files for ssh. Gives up after a few
/// refusals instead of letting libgit2 ask forever.
fn credential_callbacks() -> RemoteCallbacks<'static> {
    let token = std::env::var(TOKEN_VARIABLE)
        .ok()
        .filter(|token| !token.is_empty());
    let mut attempts = 0;
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |_url, user_name_from_url, allowed_types| {
        attempts += 1;
        let user_name = user_name_from_url.unwrap_or("git");
        if allowed_types.contains(CredentialType::USER_PASS_PLAINTEXT) && attempts == 1 {
            if let Some(token) = &token {
                return Cred::userpass_plaintext(TOKEN_USER_NAME, token);
            }
        }
        if allowed_types.contains(CredentialType::SSH_KEY) {
            if attempts == 1 {
                return Cred::ssh_key_from_agent(user_name);
            }
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let key_names = ["id_ed25519", "id_ecdsa", "id_rsa"];
            let existing_keys = home.iter().flat_map(|home| {
                key_names
                    .iter()
                    .map(move |key_name| home.join(".ssh").join(key_name))
            });
            if let Some(key) = existing_keys.filter(|key| key.exists()).nth(attempts - 2) {
                return Cred::ssh_key(user_name, None, &key, None);
            }
        }
        if allowed_types.contains(CredentialType::USERNAME) && attempts == 1 {
            return Cred::username(user_name);
        }
        if allowed_types.contains(CredentialType::DEFAULT) && attempts == 1 {
            return Cred::default();
        }
        Err(git2::Error::from_str(
            "the remote refused every credential sluice has (ssh agent, ~/.ssh keys, SLUICE_GIT_TOKEN)",
        ))
    });
    callbacks
}

fn fetch_with_git_command(mirror: &Mirror) -> Result<(), GitError> {
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(mirror.path())
        .args(["fetch", "--prune", "--no-tags", "--quiet"])
        .args(["--no-write-fetch-head", REMOTE_NAME])
        .stdin(Stdio::null());
    let has_token = std::env::var_os(TOKEN_VARIABLE).is_some_and(|token| !token.is_empty());
    let inherited_config_count = std::env::var("GIT_CONFIG_COUNT").ok();
    let has_ssh_override =
        std::env::var_os("GIT_SSH_COMMAND").is_some() || std::env::var_os("GIT_SSH").is_some();
    for (name, value) in git_command_environment(
        has_token,
        inherited_config_count.as_deref(),
        has_ssh_override,
    ) {
        command.env(name, value);
    }
    let output = command.output().map_err(|error| {
        let message = if error.kind() == std::io::ErrorKind::NotFound {
            "the git command is not installed, and this build of libgit2 cannot fetch https or ssh urls itself; install git".to_string()
        } else {
            format!("cannot run the git command: {error}")
        };
        fetch_error(mirror, &message)
    })?;
    if output.status.success() {
        return Ok(());
    }
    let standard_error = String::from_utf8_lossy(&output.stderr);
    let message = if standard_error.trim().is_empty() {
        format!("git fetch failed with {}", output.status)
    } else {
        standard_error.into_owned()
    };
    Err(fetch_error(mirror, &message))
}

/// The variables added to the git command's environment: never prompt, never let ssh ask, and
/// when a token is set, answer https credentials from it (after resetting other helpers). Holds
/// no secret itself: the helper reads the token from the inherited environment.
fn git_command_environment(
    has_token: bool,
    inherited_config_count: Option<&str>,
    has_ssh_override: bool,
) -> Vec<(String, String)> {
    let mut variables = vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())];
    if !has_ssh_override {
        variables.push((
            "GIT_SSH_COMMAND".to_string(),
            "ssh -o BatchMode=yes".to_string(),
        ));
    }
    if has_token {
        let first_index: usize = inherited_config_count
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0);
        let helpers = ["", TOKEN_CREDENTIAL_HELPER];
        for (offset, helper) in helpers.iter().enumerate() {
            let index = first_index + offset;
            variables.push((
                format!("GIT_CONFIG_KEY_{index}"),
                "credential.helper".into(),
            ));
            variables.push((format!("GIT_CONFIG_VALUE_{index}"), helper.to_string()));
        }
        variables.push((
            "GIT_CONFIG_COUNT".to_string(),
            (first_index + helpers.len()).to_string(),
        ));
    }
    variables
}

/// Points `HEAD` at the remote's default branch when known and present, else keeps a `HEAD`
/// that resolves, else picks `main`, `master` or the first branch.
fn point_head_at_default_branch(
    handle: &Repository,
    remote_default_branch: Option<String>,
) -> Result<(), git2::Error> {
    let branch_exists = |reference_name: &str| handle.find_reference(reference_name).is_ok();
    let current_target = handle
        .find_reference("HEAD")?
        .symbolic_target()
        .ok()
        .flatten()
        .map(str::to_string);
    let set_head_to = |reference_name: &str| -> Result<(), git2::Error> {
        if current_target.as_deref() != Some(reference_name) {
            handle.set_head(reference_name)?;
        }
        Ok(())
    };
    if let Some(reference_name) =
        remote_default_branch.filter(|name| name.starts_with("refs/heads/") && branch_exists(name))
    {
        return set_head_to(&reference_name);
    }
    match handle.head() {
        Ok(_) => return Ok(()),
        Err(error) if matches!(error.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => {}
        Err(error) => return Err(error),
    }
    for candidate in ["refs/heads/main", "refs/heads/master"] {
        if branch_exists(candidate) {
            return set_head_to(candidate);
        }
    }
    let mut branch_names: Vec<String> = handle
        .references_glob("refs/heads/*")?
        .flatten()
        .filter_map(|reference| reference.name().ok().map(str::to_string))
        .collect();
    branch_names.sort();
    match branch_names.first() {
        Some(first_branch) => set_head_to(first_branch),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn git_command_environment_never_holds_the_token_and_keeps_inherited_config() {
        let variables = git_command_environment(true, Some("2"), false);
        let lookup = |name: &str| {
            variables
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(lookup("GIT_TERMINAL_PROMPT"), Some("0"));
        assert_eq!(lookup("GIT_SSH_COMMAND"), Some("ssh -o BatchMode=yes"));
        assert_eq!(lookup("GIT_CONFIG_COUNT"), Some("4"));
        assert_eq!(lookup("GIT_CONFIG_KEY_2"), Some("credential.helper"));
        assert_eq!(lookup("GIT_CONFIG_VALUE_2"), Some(""));
        assert_eq!(lookup("GIT_CONFIG_VALUE_3"), Some(TOKEN_CREDENTIAL_HELPER));

        let without_token = git_command_environment(false, None, true);
        assert_eq!(
            without_token,
            vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())]
        );
    }

    fn run_git(directory: &std::path::Path, arguments: &[&str]) -> String {
        let output = Command::new("git")
            .current_dir(directory)
            .args(arguments)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .expect("git is installed");
        assert!(output.status.success(), "git {arguments:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// The path taken for https and ssh here, exercised on a file:// url: same refs, same prune.
    #[test]
    fn fetch_through_the_git_command_mirrors_branches_tags_and_prunes() {
        let source = tempfile::TempDir::new().unwrap();
        let mirrors_directory = tempfile::TempDir::new().unwrap();
        run_git(
            source.path(),
            &["init", "--quiet", "--initial-branch", "main"],
        );
        std::fs::write(source.path().join("README.md"), "one\n").unwrap();
        run_git(source.path(), &["add", "README.md"]);
        run_git(source.path(), &["commit", "--quiet", "-m", "one"]);
        run_git(source.path(), &["tag", "v1"]);
        run_git(source.path(), &["branch", "doomed"]);
        let commit = run_git(source.path(), &["rev-parse", "HEAD"]);
        run_git(source.path(), &["update-ref", "refs/pull/3/head", &commit]);
        let url = format!("file://{}", source.path().display());
        let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", &url).unwrap();

        fetch_with_git_command(&mirror).unwrap();
        run_git(source.path(), &["branch", "-D", "doomed"]);
        fetch_with_git_command(&mirror).unwrap();

        for revision in ["main", "v1", "refs/pull/3/head"] {
            assert_eq!(mirror.resolve(revision).unwrap(), commit, "{revision}");
        }
        let branches: Vec<String> = mirror
            .branch_tips()
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(branches, ["main"]);
    }

    #[test]
    fn a_failing_git_command_fetch_names_the_url_on_one_line() {
        let mirrors_directory = tempfile::TempDir::new().unwrap();
        let url = "file:///no/such/repository";
        let mirror = Mirror::open(mirrors_directory.path(), "acme/platform", url).unwrap();

        let message = fetch_with_git_command(&mirror).unwrap_err().to_string();

        assert!(
            message.starts_with("cannot fetch acme/platform from file:///no/such/repository: ")
        );
        assert!(!message.contains('\n'), "{message}");
    }

    /// Runs the helper the way git does for an https fetch, through `git credential fill`.
    #[test]
    fn token_credential_helper_answers_with_the_token_from_the_environment() {
        let mut command = Command::new("git");
        command
            .args(["credential", "fill"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_CONFIG_COUNT")
            .env(TOKEN_VARIABLE, "token-for-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (name, value) in git_command_environment(true, None, true) {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("git is installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"protocol=https\nhost=github.com\npath=acme/platform.git\n\n")
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let answer = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "git credential fill: {answer}");
        assert!(answer.contains("username=x-access-token\n"), "{answer}");
        assert!(answer.contains("password=token-for-test\n"), "{answer}");
    }
}
