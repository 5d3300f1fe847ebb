//! Checks on a decoded server configuration that serde cannot make: a listen address with a
//! port, at least one job at a time, repository names as GitHub spells them and unique, valid
//! poll intervals, and webhook limits that let some request through (at least one body at a
//! time, timeouts that are durations and not zero), and a Kubernetes API server URL sluice can
//! use. Pure; the tree is used only to point at the right line.

use crate::config::Diagnostic;
use crate::config::located::{PathPart, find};
use crate::config::messages::at;
use crate::config::server::ServerConfig;
use crate::config::workflow::parse_duration;
use crate::config::yaml::Node;

pub fn check_server(path: &str, config: &ServerConfig, tree: &Node) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let point = |parts: &[PathPart], message: String, hint: &str| {
        at(
            path,
            find(tree, parts).value_position,
            message,
            Some(hint.to_string()),
        )
    };
    if let Some(listen) = &config.listen {
        let has_port = listen
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            diagnostics.push(point(
                &["listen".into()],
                format!("invalid `listen` address `{listen}`"),
                "write a host and a port, such as `127.0.0.1:8080` or `0.0.0.0:8080`",
            ));
        }
    }
    if config.max_parallel_jobs == Some(0) {
        diagnostics.push(point(
            &["max-parallel-jobs".into()],
            "`max-parallel-jobs` is 0, so no job would ever run".to_string(),
            "set it to 1 or more, or leave it out for the default of 4",
        ));
    }
    if config.webhook.max_concurrent_bodies == Some(0) {
        diagnostics.push(point(
            &["webhook".into(), "max-concurrent-bodies".into()],
            "`webhook.max-concurrent-bodies` is 0, so no delivery would ever be read".to_string(),
            "set it to 1 or more, or leave it out for the default of 8",
        ));
    }
    let timeouts = [
        ("header-timeout", &config.webhook.header_timeout, "10s"),
        ("body-timeout", &config.webhook.body_timeout, "30s"),
    ];
    for (key, value, default) in timeouts {
        let Some(text) = value else { continue };
        let problem = match parse_duration(text) {
            Ok(duration) if duration.is_zero() => Some(format!(
                "`webhook.{key}` is `{text}`, so every client would time out"
            )),
            Ok(_) => None,
            Err(problem) => Some(format!("`webhook.{key}`: {problem}")),
        };
        if let Some(problem) = problem {
            diagnostics.push(point(
                &["webhook".into(), key.into()],
                problem,
                &format!("write a duration such as `{default}` (the default), or leave it out"),
            ));
        }
    }
    for (index, repository) in config.repositories.iter().enumerate() {
        let within =
            |key: &str| -> Vec<PathPart> { vec!["repositories".into(), index.into(), key.into()] };
        let owner_and_name = repository.name.split_once('/');
        let well_formed = owner_and_name.is_some_and(|(owner, name)| {
            !owner.is_empty() && !name.is_empty() && !name.contains('/')
        });
        if !well_formed {
            diagnostics.push(point(
                &within("name"),
                format!("invalid repository name `{}`", repository.name),
                "write it as GitHub does: `OWNER/NAME`",
            ));
        }
        let earlier = config.repositories[..index]
            .iter()
            .position(|other| other.name == repository.name);
        if let Some(earlier_index) = earlier {
            diagnostics.push(point(
                &within("name"),
                format!("repository `{}` is listed twice", repository.name),
                &format!(
                    "it is also repository {}; keep one entry per repository",
                    earlier_index + 1
                ),
            ));
        }
        if repository.url.trim().is_empty() {
            diagnostics.push(point(
                &within("url"),
                format!("repository `{}` has an empty `url`", repository.name),
                "give a local path, a `file://`, `https://` or ssh URL",
            ));
        }
        if let Some(interval) = &repository.poll_interval
            && let Err(problem) = parse_duration(interval)
        {
            diagnostics.push(point(
                &within("poll-interval"),
                format!(
                    "`poll-interval` of repository `{}`: {problem}",
                    repository.name
                ),
                "leave it out to rely on webhooks only",
            ));
        }
    }
    if let Some(user) = &config.steps.user
        && parse_user(user).is_none()
    {
        diagnostics.push(point(
            &["steps".into(), "user".into()],
            format!("`steps.user` `{user}` is not `UID:GID`"),
            "write numbers, such as `65534:65534`; leave it out for nobody when sluice runs as root",
        ));
    }
    if let Some(cpus) = config.steps.cpus
        && !(cpus > 0.0 && cpus.is_finite())
    {
        diagnostics.push(point(
            &["steps".into(), "cpus".into()],
            format!("`steps.cpus` is {cpus}; a step needs more than 0 CPUs"),
            "write a positive number such as `2` or `0.5`, or leave it out for no limit",
        ));
    }
    if let Some(memory) = &config.steps.memory
        && let Err(problem) = crate::config::server::parse_memory(memory)
    {
        diagnostics.push(point(
            &["steps".into(), "memory".into()],
            problem,
            "leave it out for no limit",
        ));
    }
    if let Some(api_server) = &config.kubernetes.api_server
        && let Err(problem) = crate::config::server::parse_api_server(api_server)
    {
        diagnostics.push(point(
            &["kubernetes".into(), "api-server".into()],
            format!("`kubernetes.api-server`: {problem}"),
            "leave it out to reach each environment's cluster through its kubeconfig",
        ));
    }
    diagnostics.extend(check_runner(config, &point));
    diagnostics
}

/// `runner:`: names Kubernetes accepts, quantities it reads, a usable API server, an image for
/// steps that name none.
fn check_runner(
    config: &ServerConfig,
    point: &dyn Fn(&[PathPart], String, &str) -> Diagnostic,
) -> Vec<Diagnostic> {
    use crate::config::runner::{RunnerKind, is_dns_label, is_quantity};
    let runner = &config.runner;
    let mut diagnostics = Vec::new();
    let field = |key: &str| -> Vec<PathPart> { vec!["runner".into(), key.into()] };
    for (key, value) in [
        ("namespace", &runner.namespace),
        ("service-account", &runner.service_account),
    ] {
        if let Some(name) = value
            && !is_dns_label(name)
        {
            diagnostics.push(point(
                &field(key),
                format!("`runner.{key}` `{name}` is not a Kubernetes name"),
                "use lowercase letters, digits and `-`, at most 63 characters",
            ));
        }
    }
    for (key, value) in [
        ("cpu", &runner.resources.cpu),
        ("memory", &runner.resources.memory),
    ] {
        if let Some(quantity) = value
            && !is_quantity(quantity)
        {
            diagnostics.push(point(
                &["runner".into(), "resources".into(), key.into()],
                format!("`runner.resources.{key}` `{quantity}` is not a Kubernetes quantity"),
                "write e.g. `500m` or `2` for cpu, `512Mi` or `2Gi` for memory",
            ));
        }
    }
    if let Some(api_server) = &runner.api_server
        && let Err(problem) = crate::config::server::parse_api_server(api_server)
    {
        diagnostics.push(point(
            &field("api-server"),
            format!("`runner.api-server`: {problem}"),
            "leave it out to use the pod's service account or the kubeconfig",
        ));
    }
    if runner.kind == RunnerKind::Kubernetes
        && runner.image.is_none()
        && config.steps.image.is_none()
    {
        diagnostics.push(point(
            &field("kind"),
            "`runner.kind: kubernetes` has no image for steps that name none".to_string(),
            "set `runner.image` (or `steps.image`), e.g. `debian:bookworm-slim`",
        ));
    }
    diagnostics
}

/// `UID:GID` as numbers.
pub fn parse_user(text: &str) -> Option<(u32, u32)> {
    let (uid, gid) = text.split_once(':')?;
    Some((uid.trim().parse().ok()?, gid.trim().parse().ok()?))
}
