//! The Docker engine calls of a build: list the images carrying a context-digest label (candidates
//! for reuse; the label proves nothing by itself), build from a streamed context with the output going line by line into the job log, tag, and push. A failed
//! build is turned into the Dockerfile instruction and line that failed, with its exit code.
//! Knows nothing of the store, templating or where the context comes from.

use super::dockerfile::{Instruction, find_step, instructions};
use super::reference::ImageName;
use super::registry::Credentials;
use super::stream::ContextStream;
use crate::sandbox::LogSink;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListImagesOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// The label that carries the context digest.
pub const CONTEXT_DIGEST_LABEL: &str = "dev.sluice.context-digest";

static BUILD_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has asked the engine to build an image.
pub fn build_calls() -> u64 {
    BUILD_CALLS.load(Ordering::SeqCst)
}

/// Why a build did not produce an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildFailure {
    #[error(
        "Dockerfile {dockerfile} line {line}: `{instruction}` failed with exit code {exit_code}; fix the command and push again"
    )]
    Instruction {
        dockerfile: String,
        line: usize,
        instruction: String,
        exit_code: i64,
    },
    #[error(
        "Dockerfile {dockerfile} line {line}: base image of `{instruction}` is not present in the engine and cannot be pulled ({message}); load it into the engine (e.g. scripts/setup-python-base.sh) or name an image the engine has"
    )]
    BaseImage {
        dockerfile: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("Dockerfile {dockerfile} line {line}: `{instruction}` failed: {message}")]
    Step {
        dockerfile: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("the engine could not build {dockerfile}: {message}")]
    Engine { dockerfile: String, message: String },
    #[error("cancelled while building")]
    Cancelled,
}

/// What to build.
pub struct BuildCall<'a> {
    /// The `dockerfile` parameter: the file's name inside the archive.
    pub dockerfile_in_archive: &'a str,
    /// The Dockerfile as the user knows it (repository path), for messages.
    pub dockerfile_shown: &'a str,
    pub dockerfile_text: &'a str,
    /// The first tag given to the image by the build.
    pub tag: String,
    pub args: HashMap<String, String>,
    pub target: Option<String>,
    pub labels: HashMap<String, String>,
    /// Credentials for pulling base images from the push registry, when it needs them.
    pub registry_credentials: Option<(String, Credentials)>,
}

/// The ids of the local images labelled with this context digest, newest first.
pub async fn images_with_context_digest(
    docker: &Docker,
    digest: &str,
) -> Result<Vec<String>, String> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{CONTEXT_DIGEST_LABEL}={digest}")],
    )]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|error| format!("cannot list the engine's images: {error}"))?;
    let mut images = images;
    images.sort_by_key(|image| std::cmp::Reverse(image.created));
    Ok(images.into_iter().map(|image| image.id).collect())
}

/// Builds, streaming the engine's output into the log; returns the image id.
pub async fn build(
    docker: &Docker,
    call: BuildCall<'_>,
    context: ContextStream,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<String, BuildFailure> {
    BUILD_CALLS.fetch_add(1, Ordering::SeqCst);
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(call.dockerfile_in_archive)
        .t(&call.tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&call.args)
        .labels(&call.labels);
    if let Some(target) = &call.target {
        options = options.target(target);
    }
    let body = bollard::body_try_stream(context.stream);
    let pull_credentials = call
        .registry_credentials
        .as_ref()
        .map(|(registry, credentials)| {
            HashMap::from([(registry.clone(), docker_credentials(registry, credentials))])
        });
    let mut output = docker.build_image(options.build(), pull_credentials, Some(body));
    let all_instructions = instructions(call.dockerfile_text);
    let mut lines = LineBuffer::default();
    let mut image_id = None;
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return Err(BuildFailure::Cancelled),
            item = output.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                    for line in lines.push(text) {
                        let _ = log.send(format!("{line}\n"));
                    }
                }
                if let Some(id) = info.aux.and_then(|aux| aux.id) {
                    image_id = Some(id);
                }
            }
            Err(error) => {
                if let Some(line) = lines.flush() {
                    let _ = log.send(format!("{line}\n"));
                }
                let message = match error {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                let _ = log.send(format!("{}\n", message.trim_end()));
                return Err(failure(
                    &call,
                    &all_instructions,
                    lines.current_step(),
                    &message,
                ));
            }
        }
    }
    if let Some(line) = lines.flush() {
        let _ = log.send(format!("{line}\n"));
    }
    match image_id {
        Some(id) => Ok(id),
        // Older engines print the id only as text; the tag is as good a handle.
        None => docker
            .inspect_image(&call.tag)
            .await
            .ok()
            .and_then(|image| image.id)
            .ok_or_else(|| BuildFailure::Engine {
                dockerfile: call.dockerfile_shown.to_owned(),
                message: "the build ended without an image; read the build output above".to_owned(),
            }),
    }
}

/// Turns the engine's error text into the instruction that failed.
fn failure(
    call: &BuildCall<'_>,
    all_instructions: &[Instruction],
    current_step: Option<(usize, String)>,
    message: &str,
) -> BuildFailure {
    let dockerfile = call.dockerfile_shown.to_owned();
    let Some(instruction) = current_step
        .as_ref()
        .and_then(|(number, text)| find_step(all_instructions, *number, text))
    else {
        return BuildFailure::Engine {
            dockerfile,
            message: message.trim().to_owned(),
        };
    };
    if let Some(exit_code) = exit_code_in(message) {
        return BuildFailure::Instruction {
            dockerfile,
            line: instruction.line,
            instruction: instruction.text.clone(),
            exit_code,
        };
    }
    if instruction.keyword() == "FROM" {
        return BuildFailure::BaseImage {
            dockerfile,
            line: instruction.line,
            instruction: instruction.text.clone(),
            message: message.trim().to_owned(),
        };
    }
    BuildFailure::Step {
        dockerfile,
        line: instruction.line,
        instruction: instruction.text.clone(),
        message: message.trim().to_owned(),
    }
}

/// `The command '/bin/sh -c exit 3' returned a non-zero code: 3` → 3.
fn exit_code_in(message: &str) -> Option<i64> {
    let (_, after) = message.rsplit_once("returned a non-zero code:")?;
    after.split_whitespace().next()?.parse().ok()
}

/// The engine sends text in pieces that need not end at line ends.
#[derive(Default)]
struct LineBuffer {
    partial: String,
    step: Option<(usize, String)>,
}

impl LineBuffer {
    fn push(&mut self, text: &str) -> Vec<String> {
        self.partial.push_str(text);
        let mut complete = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']).to_owned();
            self.note_step(&line);
            complete.push(line);
        }
        complete
    }

    fn flush(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        self.note_step(&line);
        Some(line)
    }

    /// `Step 3/7 : RUN make` → (3, "RUN make").
    fn note_step(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("Step ") else {
            return;
        };
        let Some((counter, text)) = rest.split_once(" : ") else {
            return;
        };
        if let Some(number) = counter
            .split_once('/')
            .and_then(|(number, _)| number.parse().ok())
        {
            self.step = Some((number, text.to_owned()));
        }
    }

    fn current_step(&self) -> Option<(usize, String)> {
        self.step.clone()
    }
}

/// Gives the image one more name.
pub async fn tag(
    docker: &Docker,
    image_id: &str,
    name: &ImageName,
    tag: &str,
) -> Result<(), String> {
    docker
        .tag_image(
            image_id,
            Some(
                TagImageOptionsBuilder::new()
                    .repo(&name.full)
                    .tag(tag)
                    .build(),
            ),
        )
        .await
        .map_err(|error| {
            format!(
                "cannot tag image {image_id} as {}: {error}",
                name.tagged(tag)
            )
        })
}

/// Pushes one tag; returns the digest the engine reports for it.
pub async fn push(
    docker: &Docker,
    name: &ImageName,
    tag: &str,
    credentials: Option<&Credentials>,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<Option<String>, String> {
    let docker_credentials =
        credentials.map(|credentials| docker_credentials(&name.registry, credentials));
    let mut output = docker.push_image(
        &name.full,
        Some(PushImageOptionsBuilder::new().tag(tag).build()),
        docker_credentials,
    );
    let mut digest = None;
    let mut last_status = String::new();
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return Err("cancelled while pushing".to_owned()),
            item = output.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => {
                let Some(status) = info.status else { continue };
                // Progress of each layer repeats many times; the log keeps the changes.
                if info
                    .progress_detail
                    .is_some_and(|detail| detail.current.is_some())
                {
                    continue;
                }
                if let Some(found) = status.split("digest: ").nth(1) {
                    digest = found.split_whitespace().next().map(str::to_owned);
                }
                if status != last_status {
                    let _ = log.send(format!("{status}\n"));
                    last_status = status;
                }
            }
            Err(error) => {
                let message = match error {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                return Err(format!(
                    "registry {} refused the push of {}: {}; {}",
                    name.registry,
                    name.tagged(tag),
                    message.trim(),
                    push_hint(&message)
                ));
            }
        }
    }
    Ok(digest)
}

/// The engine's form of registry credentials; it sends them only to that registry.
fn docker_credentials(registry: &str, credentials: &Credentials) -> DockerCredentials {
    DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.password.clone()),
        serveraddress: Some(registry.to_owned()),
        ..DockerCredentials::default()
    }
}

fn push_hint(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("denied")
        || lower.contains("authentication")
    {
        "check `credentials:` on the build step or `docker login` for this registry"
    } else if lower.contains("https") || lower.contains("tls") || lower.contains("certificate") {
        "the engine speaks TLS to this registry: give the registry a certificate the engine trusts, or list it under `insecure-registries` in the engine's daemon.json"
    } else {
        "check that the registry runs and accepts pushes (scripts/setup-registry.sh starts one on 127.0.0.1:5000)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_lines_are_followed_across_pieces() {
        let mut buffer = LineBuffer::default();
        assert!(buffer.push("Step 2/3 : RUN echo hi").is_empty());
        assert_eq!(
            buffer.push("\n ---> Running in x\nhi\n"),
            vec!["Step 2/3 : RUN echo hi", " ---> Running in x", "hi"]
        );
        assert_eq!(buffer.current_step(), Some((2, "RUN echo hi".to_owned())));
        buffer.push("partial");
        assert_eq!(buffer.flush().as_deref(), Some("partial"));
    }

    #[test]
    fn exit_codes_are_read_from_the_engine_message() {
        assert_eq!(
            exit_code_in("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
            Some(3)
        );
        assert_eq!(exit_code_in("pull access denied"), None);
    }
}
