//! Which values of the expression context whoever pushes or opens a pull request can choose:
//! branch, tag and ref names, the actor, event payload fields, and job outputs that carry text
//! from the pushed code. A table of the context's shape (kept in step with
//! `planner::expression_context` by a test there) plus rules for `env`, `needs` and `secrets`.
//! Pure; knows the context's shape, nothing of where it is used.

use crate::config::expr::Segment;
use crate::config::workflow::{Job, Workflow};

/// Why a value cannot be trusted: who chooses it and what it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    /// `whoever pushes`, `whoever opens a pull request`.
    pub chooser: &'static str,
    /// `a branch name may contain shell code`.
    pub what: &'static str,
}

const BRANCH: Reason = Reason {
    chooser: "whoever pushes",
    what: "a branch name may contain shell code",
};
const TAG: Reason = Reason {
    chooser: "whoever pushes",
    what: "a tag name may contain shell code",
};
const REF: Reason = Reason {
    chooser: "whoever pushes",
    what: "a branch or tag name may contain shell code",
};
const HEAD_BRANCH: Reason = Reason {
    chooser: "whoever opens a pull request",
    what: "a branch name may contain shell code",
};
const ACTOR: Reason = Reason {
    chooser: "whoever pushes",
    what: "an account name is chosen by its owner",
};
const PAYLOAD: Reason = Reason {
    chooser: "whoever pushes or opens a pull request",
    what: "titles, bodies, commit messages, names and labels may contain shell code",
};
pub(crate) const OUTPUT: Reason = Reason {
    chooser: "whoever pushes",
    what: "a job output may carry text from the pushed code, such as a plan summary",
};

/// The shape of a part of the context and how far it can be trusted. `Safe` and `Untrusted`
/// cover the value and everything below it.
enum Shape {
    Safe,
    Untrusted(Reason),
    /// Listed properties; any other property has the shape `other`. The object as a whole is
    /// untrusted when a listed property is.
    Object {
        fields: &'static [(&'static str, Shape)],
        other: &'static Shape,
    },
}

/// The context `planner::expression_context` builds, without `env`, which the caller judges
/// by its values, and `needs` and `secrets`, which the scheduler adds.
const CONTEXT: Shape = Shape::Object {
    fields: &[
        // The event's kind (`push`, `pull_request`, `merge`); anything below it would be the
        // payload, as `github.event` is on GitHub.
        (
            "event",
            Shape::Object {
                fields: &[],
                other: &Shape::Untrusted(PAYLOAD),
            },
        ),
        (
            "git",
            Shape::Object {
                fields: &[
                    ("branch", Shape::Untrusted(BRANCH)),
                    ("tag", Shape::Untrusted(TAG)),
                    ("ref", Shape::Untrusted(REF)),
                    ("sha", Shape::Safe),
                    ("short_sha", Shape::Safe),
                ],
                other: &Shape::Safe,
            },
        ),
        (
            "github",
            Shape::Object {
                fields: &[
                    ("ref", Shape::Untrusted(REF)),
                    ("ref_name", Shape::Untrusted(REF)),
                    ("head_ref", Shape::Untrusted(HEAD_BRANCH)),
                    // A base branch is named by someone with push access; still not a script.
                    ("base_ref", Shape::Untrusted(BRANCH)),
                    ("actor", Shape::Untrusted(ACTOR)),
                    ("triggering_actor", Shape::Untrusted(ACTOR)),
                    ("event", Shape::Untrusted(PAYLOAD)),
                    ("sha", Shape::Safe),
                    ("event_name", Shape::Safe),
                    ("repository", Shape::Safe),
                    ("repository_owner", Shape::Safe),
                ],
                other: &Shape::Safe,
            },
        ),
        (
            "pull_request",
            Shape::Object {
                fields: &[("number", Shape::Safe)],
                other: &Shape::Untrusted(PAYLOAD),
            },
        ),
        ("repository", Shape::Safe),
        ("pipeline", Shape::Safe),
        ("secrets", Shape::Safe),
        ("matrix", Shape::Safe),
    ],
    // Names the context does not define read as null.
    other: &Shape::Safe,
};

/// An untrusted value an expression would carry: where it sits (`git.branch`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub field: String,
    pub reason: Reason,
}

/// Whether the value at `path` (and everything below it) may hold text an outsider chose.
/// `needs.<job>.outputs.<name>` is judged by what job `<job>` of `workflow` records; `env`
/// is left to the caller, which knows the variables' values.
pub fn judge(path: &[Segment], workflow: &Workflow) -> Option<Finding> {
    match path.first() {
        Some(Segment::Key(root)) if root.eq_ignore_ascii_case("needs") => {
            judge_needs(&path[1..], workflow)
        }
        _ => judge_shape(&CONTEXT, path, &mut Vec::new()),
    }
}

fn judge_shape(shape: &Shape, path: &[Segment], walked: &mut Vec<String>) -> Option<Finding> {
    match shape {
        Shape::Safe => None,
        Shape::Untrusted(reason) => {
            walked.extend(path.iter().map(|segment| match segment {
                Segment::Key(key) => key.clone(),
                Segment::Any => "*".to_owned(),
            }));
            Some(Finding {
                field: walked.join("."),
                reason: *reason,
            })
        }
        Shape::Object { fields, other } => {
            let field = |name: &str, shape: &Shape, rest: &[Segment]| {
                let mut walked = walked.clone();
                walked.push(name.to_owned());
                judge_shape(shape, rest, &mut walked)
            };
            match path.split_first() {
                // The whole object: untrusted when any listed property is.
                None => fields
                    .iter()
                    .find_map(|(name, shape)| field(name, shape, &[])),
                Some((Segment::Any, rest)) => fields
                    .iter()
                    .find_map(|(name, shape)| field(name, shape, rest))
                    .or_else(|| field("*", other, rest)),
                Some((Segment::Key(key), rest)) => {
                    match fields
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(key))
                    {
                        Some((name, shape)) => field(name, shape, rest),
                        None => field(key, other, rest),
                    }
                }
            }
        }
    }
}

/// `needs.<job>.result` is sluice's word for how the job ended; outputs are trusted only where
/// sluice itself made them from a fixed alphabet (see [`sluice_made_output`]).
fn judge_needs(path: &[Segment], workflow: &Workflow) -> Option<Finding> {
    let untrusted = |field: String| {
        Some(Finding {
            field,
            reason: OUTPUT,
        })
    };
    let Some((job_segment, rest)) = path.split_first() else {
        return untrusted("needs".to_owned());
    };
    let (job_id, job) = match job_segment {
        Segment::Key(job_id) => (
            job_id.clone(),
            workflow
                .jobs
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(job_id))
                .map(|(_, job)| job),
        ),
        Segment::Any => ("*".to_owned(), None),
    };
    match rest.split_first() {
        None => untrusted(format!("needs.{job_id}")),
        Some((Segment::Key(key), _)) if key.eq_ignore_ascii_case("result") => None,
        Some((Segment::Key(key), after)) if key.eq_ignore_ascii_case("outputs") => {
            match after.first() {
                Some(Segment::Key(name))
                    if job.is_some_and(|job| sluice_made_output(job, name)) =>
                {
                    None
                }
                Some(Segment::Key(name)) => untrusted(format!("needs.{job_id}.outputs.{name}")),
                _ => untrusted(format!("needs.{job_id}.outputs")),
            }
        }
        Some((Segment::Any, _)) => untrusted(format!("needs.{job_id}.outputs")),
        // Nothing else is defined there; it reads as null.
        Some((Segment::Key(_), _)) => None,
    }
}

/// Outputs that only sluice writes, from a fixed alphabet, whatever was pushed: a build's
/// digests, image id and whether it built (`image` and `tags` too when the step's `image` and
/// `registry` are plain text, so the name is the author's and the tags are sanitised), and a
/// Terraform step's plan hash, counts and environment. A plan's summary, findings and outputs,
/// or a lock holder's description, carry text from the pushed code or ref and stay untrusted.
/// `run:` steps record no outputs; if they ever may, this list must be judged again.
fn sluice_made_output(job: &Job, name: &str) -> bool {
    let builds: Vec<_> = job
        .steps
        .iter()
        .filter_map(|step| step.build.as_ref())
        .collect();
    let plain_image_name = builds.iter().all(|build| {
        !build.image.contains("{{")
            && !build
                .registry
                .as_deref()
                .is_some_and(|registry| registry.contains("{{"))
    });
    let from_build = !builds.is_empty()
        && match name {
            "digest" | "image-id" | "context-digest" | "built" => true,
            "image" | "tags" => plain_image_name,
            _ => false,
        };
    let from_terraform = job.steps.iter().any(|step| step.terraform.is_some())
        && matches!(
            name,
            "plan_sha256" | "counts" | "denials" | "warnings" | "environment"
        );
    from_build || from_terraform
}

/// Whether every part of the context at `path` is listed in the table above, so a new
/// property cannot slip in unjudged. For the test that keeps the table and
/// `planner::expression_context` in step.
#[cfg(test)]
pub(crate) fn is_listed(path: &[&str]) -> bool {
    let mut shape = &CONTEXT;
    for key in path {
        match shape {
            Shape::Object { fields, .. } => match fields.iter().find(|(name, _)| name == key) {
                Some((_, next)) => shape = next,
                None => return false,
            },
            Shape::Safe | Shape::Untrusted(_) => return true,
        }
    }
    true
}
