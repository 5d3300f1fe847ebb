//! A release: one commit on a deploy branch plus everything built and reviewed for it, promoted
//! through the environments as a unit. Immutable once recorded.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Unique per repository: `r<sequence>-<12 hex of commit>`.
    pub id: String,
    pub repository: String,
    /// The full commit sha the release was cut from.
    pub commit: String,
    /// The deploy branch the commit landed on.
    pub branch: String,
    /// Who pushed or merged it (GitHub login), when known.
    pub author: Option<String>,
    /// Unix seconds when the release was recorded.
    pub created_at: i64,
    /// Git order on the branch: a larger sequence landed later.
    pub sequence: i64,
    /// Image name → pinned reference `registry/name@sha256:...`.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// Environment → sha256 of the Terraform plan reviewed for this commit.
    #[serde(default)]
    pub plans: BTreeMap<String, String>,
    /// The git tree id of the DAG folder at the commit.
    #[serde(default)]
    pub dag_tree: Option<String>,
    /// Environment → the text of its model pins file at the commit (`mlflow.pins`), what the
    /// MLflow target selects each model's version from. Which version an alias actually moved to
    /// is the MLflow step's `outputs.serving` of the deployment, and what serving workloads follow.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    /// The default branch's commit whose `environments/` and `policies/` decided this release's
    /// gates and targets when it was cut (`docs/security.md`).
    #[serde(default)]
    pub config_commit: Option<String>,
    /// The GitHub logins of everyone who authored, committed or pushed what the release carries
    /// (from the push that landed it). None of them may approve it.
    #[serde(default)]
    pub contributors: BTreeSet<String>,
}

impl Release {
    /// Whether `login` wrote or landed any of the release: its author or one of its contributors.
    pub fn is_contributor(&self, login: &str) -> bool {
        self.author.as_deref() == Some(login) || self.contributors.contains(login)
    }

    /// The release a commit would become, before it is cut: what a pull request's preview
    /// deploys on paper. Sequence 0; nothing built or reviewed is attached yet.
    pub fn unrecorded(
        repository: &str,
        commit: &str,
        branch: &str,
        author: Option<&str>,
    ) -> Release {
        Release {
            id: format!("preview-{}", crate::model::short_commit(commit)),
            repository: repository.to_owned(),
            commit: commit.to_owned(),
            branch: branch.to_owned(),
            author: author.map(str::to_owned),
            created_at: 0,
            sequence: 0,
            images: BTreeMap::new(),
            plans: BTreeMap::new(),
            dag_tree: None,
            models: BTreeMap::new(),
            config_commit: None,
            contributors: BTreeSet::new(),
        }
    }

    /// The key an image built by a run goes under in `images`: `registry/team/serving-api:tag@sha256:…`
    /// → `serving-api`. `None` for an image not pinned by digest, which a release never carries.
    pub fn image_key(image: &str) -> Option<&str> {
        let (name, _) = image.split_once("@sha256:")?;
        let short = name.rsplit('/').next().unwrap_or(name);
        Some(short.split(':').next().unwrap_or(short))
    }

    pub fn new_id(sequence: i64, commit: &str) -> String {
        format!("r{sequence}-{}", crate::model::short_commit(commit))
    }
}
