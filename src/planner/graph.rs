//! The order in which a pipeline's jobs are listed: a topological order of `needs` with file
//! order as the tie-break, and the problems that prevent one (unknown needs, cycles). Knows
//! only job ids and their needs.

use crate::config::workflow::Job;
use indexmap::IndexMap;

/// Job ids in an order where every job comes after the jobs it needs, and earlier jobs in the
/// file come first when both could go. Problems are returned alongside; jobs caught in a cycle
/// are appended in file order so that nothing is lost.
pub(super) fn order(jobs: &IndexMap<String, Job>) -> (Vec<&str>, Vec<String>) {
    let mut problems = Vec::new();
    let needs_by_index: Vec<Vec<usize>> = jobs
        .iter()
        .map(|(id, job)| {
            job.needs
                .0
                .iter()
                .filter_map(|need| match jobs.get_index_of(need) {
                    Some(index) => Some(index),
                    None => {
                        problems.push(unknown_need(id, need, jobs));
                        None
                    }
                })
                .collect()
        })
        .collect();
    let mut placed = vec![false; jobs.len()];
    let mut ordered = Vec::with_capacity(jobs.len());
    while ordered.len() < jobs.len() {
        let ready = (0..jobs.len()).find(|&index| {
            !placed[index] && needs_by_index[index].iter().all(|&need| placed[need])
        });
        match ready {
            Some(index) => {
                placed[index] = true;
                ordered.push(index);
            }
            None => {
                let stuck: Vec<usize> = (0..jobs.len()).filter(|&index| !placed[index]).collect();
                problems.push(format!(
                    "jobs {} need each other in a cycle; remove one of their `needs`",
                    stuck
                        .iter()
                        .map(|&index| format!(
                            "`{}`",
                            jobs.get_index(index).map_or("", |(id, _)| id)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                ordered.extend(stuck);
            }
        }
    }
    let ids = ordered
        .into_iter()
        .filter_map(|index| jobs.get_index(index).map(|(id, _)| id.as_str()))
        .collect();
    (ids, problems)
}

fn unknown_need(id: &str, need: &str, jobs: &IndexMap<String, Job>) -> String {
    let closest = jobs
        .keys()
        .filter(|candidate| candidate.as_str() != id)
        .map(|candidate| (strsim::levenshtein(candidate, need), candidate))
        .min();
    match closest {
        Some((distance, candidate)) if distance <= 2 => {
            format!("job `{id}` needs unknown job `{need}`; did you mean `{candidate}`?")
        }
        _ => format!("job `{id}` needs unknown job `{need}`; name one of the jobs under `jobs:`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(spec: &str) -> IndexMap<String, Job> {
        serde_saphyr::from_str(spec).expect("jobs parse")
    }

    #[test]
    fn a_job_waits_for_its_needs_even_when_written_first() {
        let jobs = jobs("deploy: {needs: build, steps: []}\nbuild: {steps: []}\n");
        assert_eq!(order(&jobs), (vec!["build", "deploy"], Vec::new()));
    }

    #[test]
    fn a_job_needing_itself_is_a_cycle() {
        let jobs = jobs("loop: {needs: loop, steps: []}\n");
        let (ids, problems) = order(&jobs);
        assert_eq!(ids, vec!["loop"]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("cycle"), "{}", problems[0]);
    }

    #[test]
    fn an_unknown_need_far_from_every_job_gets_no_suggestion() {
        let jobs = jobs("build: {needs: terraform-apply, steps: []}\n");
        let (_, problems) = order(&jobs);
        assert_eq!(
            problems,
            vec![
                "job `build` needs unknown job `terraform-apply`; name one of the jobs under `jobs:`"
                    .to_string()
            ]
        );
    }
}
