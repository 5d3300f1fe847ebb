//! How a target registers: one [`Registration`] per target (its name, its section's type, how it
//! is built, what it adds to a release, whether its system answers), and the `registry!` macro
//! that turns the one list in `targets/mod.rs` into the environment file's typed sections and the
//! table the rest of sluice walks. Knows no particular target.

use crate::config::environment::Environment;
use crate::config::section::Section;
use crate::deploy::{Release, Target, TargetError, TargetKind};
use crate::store::{Database, Store};
use std::path::Path;
use std::sync::Arc;

/// What building a target may use besides its section.
pub struct BuildContext<'a> {
    pub repository: &'a str,
    /// sluice's data directory: mirrors, plans, version folders.
    pub data_dir: &'a Path,
    /// Plans, locks and model history; without it there is no Terraform target and MLflow
    /// records no history.
    pub store: Option<&'a Arc<dyn Database>>,
    /// Reach this Kubernetes API server instead of the environment's kubeconfig.
    pub kubernetes_api: Option<&'a url::Url>,
}

/// Where a release is being cut: what a target may read to add to it.
pub struct ReleaseSource<'a> {
    pub store: &'a dyn Store,
    pub mirror: &'a crate::git::Mirror,
    pub repository: &'a str,
    /// The merge commit the release is cut from.
    pub commit: &'a str,
}

/// One target, as the registry knows it. Implemented by a unit struct in the target's folder.
pub trait Registration: Send + Sync + 'static {
    /// The environment file's key and the store's name for the target: never renamed.
    const NAME: &'static str;
    /// Whether a rollback deploys an older release to this target.
    const JOINS_ROLLBACKS: bool = true;
    type Section: Section;

    /// The target for an environment whose file has this section; `None` when it cannot be
    /// built here and is left out on purpose (no store for Terraform's plans).
    fn build(
        environment: &Environment,
        section: &Self::Section,
        context: &BuildContext<'_>,
    ) -> Result<Option<Box<dyn Target>>, TargetError>;

    /// What the target adds to a release cut for `environment` (a plan, a tree id, pins).
    fn add_to_release(
        _environment: &Environment,
        _section: &Self::Section,
        _source: &ReleaseSource<'_>,
        _release: &mut Release,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// Why the system the section names cannot be used from this machine, if it cannot. The
    /// demo records calls to such a target instead of making them.
    fn unreachable(_section: &Self::Section) -> Option<String> {
        None
    }
}

/// A registered target behind one type, so that the registry is a plain list.
pub trait RegisteredTarget: Sync {
    fn name(&self) -> &'static str;
    fn joins_rollbacks(&self) -> bool;
    fn configured(&self, environment: &Environment) -> bool;
    /// `None` when the environment has no section for the target (or it is left out on purpose).
    fn build(
        &self,
        environment: &Environment,
        context: &BuildContext<'_>,
    ) -> Option<Result<Arc<dyn Target>, TargetError>>;
    fn add_to_release(
        &self,
        environment: &Environment,
        source: &ReleaseSource<'_>,
        release: &mut Release,
    ) -> anyhow::Result<()>;
    fn unreachable(&self, environment: &Environment) -> Option<String>;
}

/// A [`Registration`] with the way to its section in [`super::TargetSections`].
pub struct Entry<R: Registration> {
    pub section: fn(&super::TargetSections) -> Option<&R::Section>,
}

impl<R: Registration> RegisteredTarget for Entry<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn joins_rollbacks(&self) -> bool {
        R::JOINS_ROLLBACKS
    }

    fn configured(&self, environment: &Environment) -> bool {
        (self.section)(&environment.targets).is_some()
    }

    fn build(
        &self,
        environment: &Environment,
        context: &BuildContext<'_>,
    ) -> Option<Result<Arc<dyn Target>, TargetError>> {
        let section = (self.section)(&environment.targets)?;
        R::build(environment, section, context)
            .map(|built| built.map(Arc::from))
            .transpose()
    }

    fn add_to_release(
        &self,
        environment: &Environment,
        source: &ReleaseSource<'_>,
        release: &mut Release,
    ) -> anyhow::Result<()> {
        match (self.section)(&environment.targets) {
            Some(section) => R::add_to_release(environment, section, source, release),
            None => Ok(()),
        }
    }

    fn unreachable(&self, environment: &Environment) -> Option<String> {
        R::unreachable((self.section)(&environment.targets)?)
    }
}

/// Every registered target with its kind, in deploy order.
pub fn registered() -> impl Iterator<Item = (TargetKind, &'static dyn RegisteredTarget)> {
    super::TARGETS.iter().enumerate().map(|(position, entry)| {
        let kind = TargetKind::new(position, entry.name(), entry.joins_rollbacks());
        (kind, *entry)
    })
}

/// The kind of a registered target, for its `Target::kind`.
pub fn kind<R: Registration>() -> TargetKind {
    named(R::NAME).expect("every target with a Registration is in the registry's list")
}

/// The kind of the target registered under `name`, if any.
pub fn named(name: &str) -> Option<TargetKind> {
    registered()
        .map(|(kind, _)| kind)
        .find(|kind| kind.as_str() == name)
}

/// Whether something accepts a TCP connection at `url`'s host and port within a moment: enough
/// to tell a running service from none, without speaking its protocol.
pub fn answers(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.socket_addrs(|| None).ok())
        .and_then(|addresses| addresses.first().copied())
        .is_some_and(|address| {
            std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(300))
                .is_ok()
        })
}

/// Whether two names are the same, at compile time: the list's key must be its registration's
/// `NAME`, or the environment file and the store would disagree about a target's name.
pub const fn same_name(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left.len() != right.len() {
        return false;
    }
    let mut index = 0;
    while index < left.len() {
        if left[index] != right[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Turns the list of targets into [`super::TargetSections`] (one typed field per target, read
/// and written under the target's name) and [`super::TARGETS`] (the same targets, in the same
/// order, behind one type).
macro_rules! registry {
    ($($name:ident: $registration:ty),* $(,)?) => {
        $(const _: () = assert!(
            $crate::targets::registry::same_name(
                <$registration as $crate::targets::registry::Registration>::NAME,
                stringify!($name),
            ),
            concat!("the list names `", stringify!($name), "` but its registration another name"),
        );)*

        /// Each registered target's section of one environment file; `None` where the file has
        /// none. Fields are in deploy order.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct TargetSections {
            $(pub $name: Option<<$registration as $crate::targets::registry::Registration>::Section>,)*
        }

        impl TargetSections {
            /// The registered targets' names, in deploy order: keys of an environment file.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Reads the value of the section `name`, one of [`Self::NAMES`].
            pub fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                name: &str,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match name {
                    $(stringify!($name) => self.$name = map.next_value()?,)*
                    other => return Err(serde::de::Error::unknown_field(other, Self::NAMES)),
                }
                Ok(())
            }

            /// The names of the sections the file has, in deploy order.
            pub fn configured_names(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(if self.$name.is_some() {
                    names.push(stringify!($name));
                })*
                names
            }

            /// Writes the sections there are, each under its name.
            pub fn write<M: serde::ser::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                $(if let Some(section) = &self.$name {
                    map.serialize_entry(stringify!($name), section)?;
                })*
                Ok(())
            }

            /// Every problem serde cannot see, with the name of the section it is in.
            pub fn problems(&self) -> Vec<(&'static str, $crate::config::section::SectionProblem)> {
                let mut problems = Vec::new();
                $(if let Some(section) = &self.$name {
                    let found = $crate::config::section::Section::problems(section);
                    problems.extend(found.into_iter().map(|problem| (stringify!($name), problem)));
                })*
                problems
            }
        }

        /// Every target, once, in deploy order.
        pub static TARGETS: &[&dyn $crate::targets::registry::RegisteredTarget] = &[
            $(&$crate::targets::registry::Entry::<$registration> {
                section: |sections| sections.$name.as_ref(),
            },)*
        ];
    };
}

pub(crate) use registry;
