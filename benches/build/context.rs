//! The build contexts the image-build benchmark sends: a small one with a few files and steps,
//! and a large one made of one sparse file. Writes files only; knows nothing of how they are
//! built or timed.

use std::path::{Path, PathBuf};

const SMALL_DOCKERFILE: &str = "FROM local/busybox:1
COPY nonce.txt /app/nonce.txt
COPY files/ /app/files/
RUN cat /app/files/* | wc -c > /app/size.txt
RUN echo built > /app/built.txt
";

const LARGE_DOCKERFILE: &str = "FROM local/busybox:1
COPY small.txt /small.txt
";

/// Writes the Dockerfile and 24 files of 16 KiB under `directory`; returns the bytes written.
pub fn write_small_context(directory: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(directory.join("files"))?;
    std::fs::write(directory.join("Dockerfile"), SMALL_DOCKERFILE)?;
    let mut total_bytes = SMALL_DOCKERFILE.len() as u64;
    for file_number in 0..24u32 {
        let contents: Vec<u8> = (0..16 * 1024u32)
            .map(|offset| (offset.wrapping_mul(31).wrapping_add(file_number * 7) % 251) as u8)
            .collect();
        std::fs::write(
            directory
                .join("files")
                .join(format!("part-{file_number:02}.bin")),
            &contents,
        )?;
        total_bytes += contents.len() as u64;
    }
    Ok(total_bytes)
}

/// The first file the Dockerfile copies: a new nonce makes every layer (and the context digest) new.
pub fn write_nonce(directory: &Path, nonce: &str) -> std::io::Result<()> {
    std::fs::write(directory.join("nonce.txt"), format!("{nonce}\n"))
}

/// Writes a Dockerfile, a small file and a sparse file of `mebibytes` MiB; returns the sparse
/// file's path so the caller can delete it.
pub fn write_large_context(directory: &Path, mebibytes: u64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(directory)?;
    std::fs::write(directory.join("Dockerfile"), LARGE_DOCKERFILE)?;
    std::fs::write(
        directory.join("small.txt"),
        format!("large context {}\n", std::process::id()),
    )?;
    let large_path = directory.join("large.bin");
    let large_file = std::fs::File::create(&large_path)?;
    large_file.set_len(mebibytes * 1024 * 1024)?;
    Ok(large_path)
}
