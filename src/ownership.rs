//! File ownership for the unprivileged user that code under review runs as: handing a job's
//! workspace or a Terraform run's scratch directory to that user, and telling whether sluice can
//! (it must be root). Knows nothing of steps or Terraform.

use std::path::Path;

pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Gives a job's workspace (or scratch directory) to the user its steps run as, so an
/// unprivileged step can write where it works and nowhere else. Does nothing unless sluice is
/// root and the user differs. Symbolic links are changed themselves, never followed.
pub fn hand_over(path: &Path, user: (u32, u32)) -> std::io::Result<()> {
    if !running_as_root() || user == (0, 0) || !path.exists() {
        return Ok(());
    }
    let mut pending = vec![path.to_owned()];
    while let Some(current) = pending.pop() {
        std::os::unix::fs::lchown(&current, Some(user.0), Some(user.1))?;
        let metadata = std::fs::symlink_metadata(&current)?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&current)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}
