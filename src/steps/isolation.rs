//! Where and as whom a `run:` step executes. By default in a container through the Docker engine:
//! the step's image (or the server's default), the job's workspace mounted and nothing else of the
//! host, an explicit environment, no Docker socket, a non-root user, no capabilities, CPU and
//! memory limits. A host process only for repositories the server configuration opts in
//! (`host-steps: true`), never for untrusted events, and then as an unprivileged user with a clean
//! environment. `docs/security.md` states the model.

/// The user steps run as when sluice runs as root: `nobody` on Debian.
pub const UNPRIVILEGED_USER: (u32, u32) = (65534, 65534);

/// How one `run:` step is isolated, decided by the job from the server's settings and the run's
/// trust level; the step's own files never decide it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Isolation {
    /// Run as a host process instead of a container (the repository opted in and the event is not
    /// untrusted).
    pub host: bool,
    /// The image for steps that name none (`steps.image` in the server configuration).
    pub default_image: Option<String>,
    /// uid and gid the step runs as; `None` means `UNPRIVILEGED_USER` when sluice is root and
    /// sluice's own user otherwise.
    pub user: Option<(u32, u32)>,
    /// CPUs a container step may use (e.g. `2.0`).
    pub cpus: Option<f64>,
    /// Memory a container step may use, in bytes.
    pub memory_bytes: Option<i64>,
}

impl Isolation {
    /// The uid and gid a step runs as.
    pub fn step_user(&self) -> (u32, u32) {
        if let Some(user) = self.user {
            return user;
        }
        if running_as_root() {
            UNPRIVILEGED_USER
        } else {
            // SAFETY: getuid and getgid cannot fail.
            unsafe { (libc::getuid(), libc::getgid()) }
        }
    }
}

pub use crate::ownership::{hand_over, running_as_root};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_user_wins() {
        let isolation = Isolation {
            user: Some((1000, 1000)),
            ..Isolation::default()
        };
        assert_eq!(isolation.step_user(), (1000, 1000));
    }
}
