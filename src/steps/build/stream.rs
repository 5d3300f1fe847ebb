//! The build context as a tar stream: a blocking thread reads the planned files in chunks and
//! hands them through a small bounded channel, so memory stays flat whatever the context's size
//! and a slow engine slows the reader down. Counts the bytes it sends.

use super::context::{ContextPlan, DockerfileSource, OUTSIDE_DOCKERFILE_NAME};
use super::tar::{self, EntryType};
use bytes::Bytes;
use futures_util::Stream;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size of the chunks read from files.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader and the engine: at most about 1 MiB.
const CHANNEL_CHUNKS: usize = 16;

/// A running tar stream and the count of bytes it has produced so far.
pub struct ContextStream {
    pub stream: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
    pub bytes_sent: Arc<AtomicU64>,
}

/// Starts reading the plan's files into a tar stream.
pub fn tar_stream(plan: ContextPlan) -> ContextStream {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_CHUNKS);
    let bytes_sent = Arc::new(AtomicU64::new(0));
    let counter = bytes_sent.clone();
    tokio::task::spawn_blocking(move || {
        let mut emit = |chunk: Vec<u8>| -> bool {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            sender.blocking_send(Ok(Bytes::from(chunk))).is_ok()
        };
        if let Err(error) = write_archive(&plan, &mut emit) {
            let _ = sender.blocking_send(Err(error));
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    ContextStream {
        stream: Box::pin(stream),
        bytes_sent,
    }
}

/// The number of bytes the tar stream of this plan holds, by producing and counting it.
pub async fn measure(plan: ContextPlan) -> std::io::Result<u64> {
    use futures_util::StreamExt;
    let mut context_stream = tar_stream(plan);
    while let Some(chunk) = context_stream.stream.next().await {
        chunk?;
    }
    Ok(context_stream.bytes_sent.load(Ordering::Relaxed))
}

/// Feeds the archive to `emit` piece by piece; stops quietly when `emit` says the receiver left.
fn write_archive(plan: &ContextPlan, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> std::io::Result<()> {
    let stopped = || std::io::Error::other("the engine stopped reading the build context");
    for entry in &plan.entries {
        let header = tar::header(
            &entry.path,
            entry.entry_type,
            entry.mode,
            entry.size,
            entry.modified_seconds,
            entry.link_target.as_deref(),
        );
        if entry.entry_type != EntryType::File {
            if !emit(header) {
                return Err(stopped());
            }
            continue;
        }
        let mut file = std::fs::File::open(plan.root.join(&entry.path))?;
        let mut remaining = entry.size;
        // The first chunk carries the header, to halve the number of small sends.
        let mut chunk = header;
        while remaining > 0 {
            let want = CHUNK.min(remaining as usize);
            let start = chunk.len();
            chunk.resize(start + want, 0);
            let read = file.read(&mut chunk[start..])?;
            if read == 0 {
                return Err(std::io::Error::other(format!(
                    "`{}` became shorter while it was sent; nothing may write into the checkout during a build",
                    entry.path
                )));
            }
            chunk.truncate(start + read);
            remaining -= read as u64;
            if remaining > 0 && !emit(std::mem::take(&mut chunk)) {
                return Err(stopped());
            }
        }
        chunk.extend(std::iter::repeat_n(0u8, tar::padding(entry.size)));
        if !emit(chunk) {
            return Err(stopped());
        }
    }
    if let DockerfileSource::Outside(contents) = &plan.dockerfile {
        let mut chunk = tar::header(
            OUTSIDE_DOCKERFILE_NAME,
            EntryType::File,
            0o644,
            contents.len() as u64,
            0,
            None,
        );
        chunk.extend_from_slice(contents);
        chunk.extend(std::iter::repeat_n(
            0u8,
            tar::padding(contents.len() as u64),
        ));
        if !emit(chunk) {
            return Err(stopped());
        }
    }
    if !emit(tar::end_of_archive()) {
        return Err(stopped());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::context::plan_context;
    use super::*;

    #[tokio::test]
    async fn the_archive_lists_what_the_plan_holds_and_tar_reads_it() {
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path();
        std::fs::create_dir_all(root.join("app/src")).unwrap();
        std::fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("app/src/big.bin"), vec![7u8; 200_000]).unwrap();
        std::fs::write(root.join("app/src/small.txt"), "hi\n").unwrap();
        std::os::unix::fs::symlink("small.txt", root.join("app/src/link")).unwrap();
        let plan = plan_context(root, "app", "app/Dockerfile").unwrap();
        let archive_path = root.join("out.tar");
        {
            use futures_util::StreamExt;
            let mut context_stream = tar_stream(plan.clone());
            let mut archive = Vec::new();
            while let Some(chunk) = context_stream.stream.next().await {
                archive.extend_from_slice(&chunk.unwrap());
            }
            assert_eq!(
                archive.len() as u64,
                context_stream.bytes_sent.load(Ordering::Relaxed)
            );
            assert_eq!(archive.len() % tar::BLOCK, 0);
            std::fs::write(&archive_path, &archive).unwrap();
        }
        assert_eq!(
            measure(plan).await.unwrap(),
            std::fs::metadata(&archive_path).unwrap().len()
        );
        let listing = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&archive_path)
            .output()
            .unwrap();
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("200000"), "{listing}");
        assert!(listing.contains("src/link -> small.txt"), "{listing}");
        let extract = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&archive_path)
            .arg("-C")
            .arg(extract.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(extract.path().join("src/big.bin")).unwrap(),
            vec![7u8; 200_000]
        );
    }
}
