//! One git mirror per watched repository, opened lazily and shared; fetches are serialised per
//! repository by the mirror itself.

use crate::git::Mirror;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct Mirrors {
    directory: PathBuf,
    urls: BTreeMap<String, String>,
    open: Mutex<HashMap<String, Arc<Mirror>>>,
}

impl Mirrors {
    pub fn new(directory: PathBuf, urls: BTreeMap<String, String>) -> Mirrors {
        Mirrors {
            directory,
            urls,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The mirrors already under `directory` for these repositories, each with the URL it
    /// fetches from (for commands that read what the server fetched, without its configuration).
    pub fn existing(directory: PathBuf, repositories: &[String]) -> Mirrors {
        let mut urls = BTreeMap::new();
        for repository in repositories {
            let path = directory.join(format!("{repository}.git"));
            let url = git2::Repository::open_bare(&path).ok().and_then(|handle| {
                let remote = handle.find_remote("origin").ok()?;
                remote.url().ok().map(str::to_owned)
            });
            if let Some(url) = url {
                urls.insert(repository.clone(), url);
            }
        }
        Mirrors::new(directory, urls)
    }

    pub fn urls(&self) -> &BTreeMap<String, String> {
        &self.urls
    }

    /// The mirror of a watched repository (blocking: opening may create it on disk).
    pub fn get(&self, repository: &str) -> anyhow::Result<Arc<Mirror>> {
        let mut open = self.open.lock().expect("mirror table lock");
        if let Some(mirror) = open.get(repository) {
            return Ok(mirror.clone());
        }
        let url = self.urls.get(repository).ok_or_else(|| {
            anyhow::anyhow!(
                "repository `{repository}` is not watched; add it with --repo {repository}=URL"
            )
        })?;
        let mirror = Arc::new(Mirror::open(&self.directory, repository, url)?);
        open.insert(repository.to_owned(), mirror.clone());
        Ok(mirror)
    }
}
