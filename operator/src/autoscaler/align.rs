//! From a vertex's figures to its parallelism: the need, its limits, and its
//! alignment to key groups and source splits. Pure, and replayable from what a
//! [`VertexDecision`](crate::crd::VertexDecision) records.

/// What bounds a vertex's parallelism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: usize,
    /// `autoscaler.maxParallelism`, capped by the job's key groups.
    pub max: usize,
    /// The key groups a keyed vertex spreads over.
    pub key_groups: Option<usize>,
    /// A source's splits (files, partitions), where it knows them.
    pub splits: Option<usize>,
}

/// The limits of one step, as `scaleUpMaxFactor` and `scaleDownMaxFactor` give them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLimits {
    pub up_max_factor: Option<f64>,
    pub down_max_factor: f64,
}

/// How far past the need alignment to key groups may go (`1.25×`).
pub const OVERSHOOT: f64 = 1.25;

/// The parallelism for `need` subtasks (fractional), from `current`: limited by
/// the step factors and the bounds, then aligned. The result never goes the
/// other way from `current` than the need does; it stays at `current` when the
/// bounds or the splits leave no step in that direction.
pub fn choose(current: usize, need: f64, limits: StepLimits, b: Bounds) -> usize {
    let current = current.max(1);
    let mut need = need.max(0.0).ceil().max(1.0);
    if let Some(f) = limits.up_max_factor {
        need = need.min((current as f64 * (1.0 + f)).floor().max(current as f64));
    }
    let floor = (current as f64 * (1.0 - limits.down_max_factor.clamp(0.0, 1.0))).ceil().max(1.0);
    need = need.max(floor);
    let hi = b.max.min(b.splits.unwrap_or(usize::MAX)).max(1);
    let need = (need as usize).clamp(b.min.min(hi), hi);
    let aligned = align(need, hi, b);
    // Keep the direction: alignment may not turn a scale-up into a scale-down or back.
    match need.cmp(&current) {
        std::cmp::Ordering::Greater if aligned <= current => current,
        std::cmp::Ordering::Less if aligned >= current => current,
        std::cmp::Ordering::Equal => current,
        _ => aligned,
    }
}

/// Aligns `need` (already within `1..=hi`):
/// - a source with `n` splits takes the fewest subtasks that give each at most
///   `floor(n / need)` splits, so that none reads more than the need calls for:
///   that may be well above the need (10 splits, a need of 6: 10), never above `n`;
/// - a keyed vertex takes the smallest divisor of its key groups within `1.25×`
///   the need, so that key groups spread evenly; with none there, the need itself;
/// - any other vertex, the need.
pub fn align(need: usize, hi: usize, b: Bounds) -> usize {
    if let Some(n) = b.splits.filter(|n| *n > 0) {
        if need >= n {
            return n.min(hi);
        }
        let per_subtask = n / need;
        return n.div_ceil(per_subtask).min(hi);
    }
    if let Some(m) = b.key_groups.filter(|m| *m > 0) {
        let limit = ((need as f64 * OVERSHOOT).floor() as usize).min(hi);
        if let Some(d) = (need..=limit).find(|d| m % d == 0) {
            return d;
        }
    }
    need
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: StepLimits = StepLimits { up_max_factor: None, down_max_factor: 1.0 };

    fn keyed(m: usize) -> Bounds {
        Bounds { min: 1, max: m, key_groups: Some(m), splits: None }
    }

    fn source(n: usize) -> Bounds {
        Bounds { min: 1, max: 1000, key_groups: None, splits: Some(n) }
    }

    #[test]
    fn a_keyed_vertex_takes_a_divisor_of_its_key_groups_only_within_the_bound() {
        // Flink's evenly-spread search turns a need of 33 with 128 key groups into 64.
        assert_eq!(choose(8, 33.0, FREE, keyed(128)), 33);
        assert_eq!(choose(8, 30.0, FREE, keyed(128)), 32);
        assert_eq!(choose(2, 5.0, FREE, keyed(720)), 5);
        assert_eq!(choose(2, 7.0, FREE, keyed(720)), 8);
        assert_eq!(choose(64, 33.0, FREE, keyed(128)), 33, "a scale-down is aligned the same way");
        assert_eq!(choose(4, 200.0, FREE, keyed(128)), 128, "never above the key groups");
    }

    #[test]
    fn a_source_never_exceeds_its_splits_and_takes_a_step_that_helps() {
        assert_eq!(choose(2, 6.0, FREE, source(10)), 10, "6 subtasks would still read 2 splits each");
        assert_eq!(choose(2, 4.0, FREE, source(10)), 5);
        assert_eq!(choose(2, 3.0, FREE, source(10)), 4);
        assert_eq!(choose(2, 40.0, FREE, source(7)), 7);
        assert_eq!(
            choose(8, 5.0, FREE, source(8)),
            8,
            "fewer than 8 subtasks over 8 splits cannot hold 5 subtasks' load"
        );
        assert_eq!(choose(7, 40.0, FREE, source(7)), 7, "at its splits a source cannot go higher");
    }

    #[test]
    fn the_step_factors_and_bounds_limit_a_step() {
        let limits = StepLimits { up_max_factor: Some(1.0), down_max_factor: 0.6 };
        let any = Bounds { min: 2, max: 20, key_groups: None, splits: None };
        assert_eq!(choose(3, 12.0, limits, any), 6, "at most p × (1 + 1.0)");
        assert_eq!(choose(10, 1.0, limits, any), 4, "at most down to p × (1 − 0.6)");
        assert_eq!(choose(3, 1.0, FREE, any), 2, "never below minParallelism");
        assert_eq!(choose(3, 90.0, FREE, any), 20, "never above maxParallelism");
    }
}
