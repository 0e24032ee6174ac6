//! Where an attempt's subtasks run: a pure function of the vertices'
//! parallelism and the live workers' slots.
//!
//! Invariants: slot `k` holds subtask `k` of every vertex, so a job needs as
//! many slots as its highest parallelism; slots are dealt to the workers in
//! turn, in the order given, so each worker gets an equal share.

/// Places the subtasks of vertices of `parallelism` on `workers` (index,
/// slots). Returns, per vertex, the worker of each subtask; `None` if the
/// workers have too few slots.
pub fn place(parallelism: &[usize], workers: &[(usize, usize)]) -> Option<Vec<Vec<usize>>> {
    let needed = parallelism.iter().copied().max().unwrap_or(0);
    let mut free: Vec<(usize, usize)> = workers.to_vec();
    let mut slot_worker = Vec::with_capacity(needed);
    while slot_worker.len() < needed {
        let mut placed = false;
        for (w, f) in free.iter_mut() {
            if slot_worker.len() < needed && *f > 0 {
                *f -= 1;
                slot_worker.push(*w);
                placed = true;
            }
        }
        if !placed {
            return None;
        }
    }
    Some(parallelism.iter().map(|p| slot_worker[..*p].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_dealt_to_workers_in_turn() {
        // Two workers of two slots, parallelism 3: slots 0 and 2 on worker 0.
        assert_eq!(place(&[3, 2], &[(0, 2), (1, 2)]), Some(vec![vec![0, 1, 0], vec![0, 1]]));
        // Three workers of one slot each.
        assert_eq!(place(&[3], &[(4, 1), (7, 1), (9, 1)]), Some(vec![vec![4, 7, 9]]));
        // One worker with enough slots holds everything.
        assert_eq!(place(&[2, 1], &[(0, 4)]), Some(vec![vec![0, 0], vec![0]]));
        // Too few slots.
        assert_eq!(place(&[3], &[(0, 1), (1, 1)]), None);
    }
}
