//! Cycles in "must come after" relations (`needs` between jobs, `after` between environments),
//! spelled out in the order things would run. Knows only names and edges.

use std::collections::{BTreeSet, VecDeque};

/// One cycle, in run order: each name waits for the one before it, and the first waits for the
/// last. `[build, test, package]` reads "build -> test -> package -> build".
pub type Cycle = Vec<String>;

/// `waits_for` lists, in a stable order, each name and the names it must come after. Names that
/// wait for themselves or for unknown names are left to other checks. One cycle is reported per
/// group of names caught in cycles together, starting from the group's first name in the list.
pub fn cycles(waits_for: &[(String, Vec<String>)]) -> Vec<Cycle> {
    let names: Vec<&str> = waits_for.iter().map(|(name, _)| name.as_str()).collect();
    let index_of = |name: &str| names.iter().position(|known| *known == name);
    // runs_before[a] = the names that wait for a.
    let mut runs_before: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (waiter, (_, prerequisites)) in waits_for.iter().enumerate() {
        for prerequisite in prerequisites {
            if let Some(prerequisite) = index_of(prerequisite)
                && prerequisite != waiter
                && !runs_before[prerequisite].contains(&waiter)
            {
                runs_before[prerequisite].push(waiter);
            }
        }
    }
    let mut covered: BTreeSet<usize> = BTreeSet::new();
    let mut found = Vec::new();
    for start in 0..names.len() {
        if covered.contains(&start) {
            continue;
        }
        let Some(cycle) = shortest_cycle_through(start, &runs_before) else {
            continue;
        };
        let reachable_from_start = reachable(start, &runs_before);
        for other in reachable_from_start {
            if reachable(other, &runs_before).contains(&start) {
                covered.insert(other);
            }
        }
        found.push(
            cycle
                .iter()
                .map(|index| names[*index].to_string())
                .collect(),
        );
    }
    found
}

/// Breadth-first from `start` back to itself: the shortest way round, in run order.
fn shortest_cycle_through(start: usize, runs_before: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut came_from: Vec<Option<usize>> = vec![None; runs_before.len()];
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        for &next in &runs_before[current] {
            if next == start {
                let mut cycle = vec![current];
                let mut walker = current;
                while walker != start {
                    walker =
                        came_from[walker].expect("every queued name but the start has a parent");
                    cycle.push(walker);
                }
                cycle.reverse();
                return Some(cycle);
            }
            if came_from[next].is_none() {
                came_from[next] = Some(current);
                queue.push_back(next);
            }
        }
    }
    None
}

fn reachable(start: usize, runs_before: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        for &next in &runs_before[current] {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    seen
}

/// "build -> test -> package -> build"
pub fn spell(cycle: &Cycle) -> String {
    let mut names: Vec<&str> = cycle.iter().map(String::as_str).collect();
    if let Some(first) = cycle.first() {
        names.push(first);
    }
    names.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(waits_for: &[(&str, &[&str])], expect: &[&str]) {
        let owned: Vec<(String, Vec<String>)> = waits_for
            .iter()
            .map(|(name, prerequisites)| {
                (
                    name.to_string(),
                    prerequisites.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect();
        let spelled: Vec<String> = cycles(&owned).iter().map(spell).collect();
        assert_eq!(spelled, expect);
    }

    #[test]
    fn no_cycle_in_a_chain_or_a_diamond() {
        check(&[("a", &[]), ("b", &["a"]), ("c", &["b"])], &[]);
        check(
            &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])],
            &[],
        );
    }

    #[test]
    fn three_names_in_a_ring_are_spelled_in_run_order() {
        check(
            &[
                ("build", &["package"]),
                ("test", &["build"]),
                ("package", &["test"]),
            ],
            &["build -> test -> package -> build"],
        );
    }

    #[test]
    fn self_loops_and_unknown_names_are_left_to_other_checks() {
        check(&[("a", &["a"]), ("b", &["nowhere"])], &[]);
    }

    #[test]
    fn separate_rings_are_each_reported_once() {
        check(
            &[
                ("a", &["b"]),
                ("b", &["a"]),
                ("c", &["d"]),
                ("d", &["c"]),
                ("e", &["a"]),
            ],
            &["a -> b -> a", "c -> d -> c"],
        );
    }

    #[test]
    fn overlapping_rings_are_one_group() {
        check(
            &[("a", &["c"]), ("b", &["a"]), ("c", &["b", "a"])],
            &["a -> c -> a"],
        );
    }
}
