//! How `status.autoscaler.samples` writes the autoscaler's metric history:
//! column by column, in integers, so that a full window stays small in a
//! status written every sampling interval.
//!
//! In memory the history is a list of [`MetricSample`]s (the autoscaler reads
//! it so); in status it is a [`CompactHistory`]:
//!
//! - `times`: the first sample's time (unix seconds), then each sample's
//!   difference from the one before;
//! - per vertex (in order of first appearance), arrays aligned with `times`:
//!   `parallelism` (a single value when it is the same in every sample; 0
//!   where the vertex is not in a sample), `busy` and `backpressured` in
//!   tenths of a ms per second (the operator samples them to 0.1), `recordsIn`
//!   and `recordsOut` (the first count, then differences), and `lag` (`null`
//!   where unknown; the array is left out when the lag is never known).
//!
//! Reading is lenient: arrays shorter than `times` end the history at the
//! shortest, so a damaged status loses samples, never the whole StreamJob.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::autoscaler::{MetricSample, VertexSample};

/// The metric history, column by column (see the module's documentation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompactHistory {
    /// Unix seconds: the first sample's time, then each sample's difference from the one before.
    pub times: Vec<i64>,
    pub vertices: Vec<VertexColumns>,
}

/// One vertex's figures in the history, one entry per sample.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexColumns {
    pub uid: String,
    /// One value when it is the same in every sample; 0 where the vertex is not in the sample.
    pub parallelism: Vec<i32>,
    /// Tenths of a ms per second.
    pub busy: Vec<i64>,
    /// Tenths of a ms per second.
    pub backpressured: Vec<i64>,
    /// The first cumulative count, then differences.
    pub records_in: Vec<i64>,
    /// The first cumulative count, then differences.
    pub records_out: Vec<i64>,
    /// `null` where unknown; left out when never known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag: Vec<Option<u64>>,
}

fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

/// The first value, then differences (wrapping, so any `u64` counter round-trips).
fn deltas(v: impl Iterator<Item = u64>) -> Vec<i64> {
    let mut prev = 0u64;
    v.map(|x| {
        let d = x.wrapping_sub(prev) as i64;
        prev = x;
        d
    })
    .collect()
}

fn undelta(v: &[i64]) -> Vec<u64> {
    let mut acc = 0u64;
    v.iter()
        .map(|d| {
            acc = acc.wrapping_add(*d as u64);
            acc
        })
        .collect()
}

impl CompactHistory {
    pub fn encode(samples: &[MetricSample]) -> CompactHistory {
        let mut times = Vec::with_capacity(samples.len());
        let mut prev = 0;
        for s in samples {
            times.push(s.time - prev);
            prev = s.time;
        }
        let mut uids: Vec<&str> = Vec::new();
        for v in samples.iter().flat_map(|s| &s.vertices) {
            if !uids.contains(&v.uid.as_str()) {
                uids.push(&v.uid);
            }
        }
        let vertices = uids
            .into_iter()
            .map(|uid| {
                let at: Vec<Option<&VertexSample>> =
                    samples.iter().map(|s| s.vertices.iter().find(|v| v.uid == uid)).collect();
                let mut parallelism: Vec<i32> = at.iter().map(|v| v.map_or(0, |v| v.parallelism)).collect();
                if parallelism.windows(2).all(|w| w[0] == w[1]) {
                    parallelism.truncate(1);
                }
                let lag: Vec<Option<u64>> = at.iter().map(|v| v.and_then(|v| v.lag)).collect();
                VertexColumns {
                    uid: uid.to_string(),
                    parallelism,
                    busy: at.iter().map(|v| v.map_or(0, |v| tenths(v.busy))).collect(),
                    backpressured: at.iter().map(|v| v.map_or(0, |v| tenths(v.backpressured))).collect(),
                    records_in: deltas(at.iter().map(|v| v.map_or(0, |v| v.records_in))),
                    records_out: deltas(at.iter().map(|v| v.map_or(0, |v| v.records_out))),
                    lag: if lag.iter().any(Option::is_some) { lag } else { Vec::new() },
                }
            })
            .collect();
        CompactHistory { times, vertices }
    }

    /// The samples, oldest first; see the module's documentation for what a
    /// damaged history gives.
    pub fn decode(&self) -> Vec<MetricSample> {
        let n = self.vertices.iter().fold(self.times.len(), |n, c| {
            let p = if c.parallelism.len() == 1 { n } else { c.parallelism.len() };
            let lag = if c.lag.is_empty() { n } else { c.lag.len() };
            n.min(p)
                .min(c.busy.len())
                .min(c.backpressured.len())
                .min(c.records_in.len())
                .min(c.records_out.len())
                .min(lag)
        });
        let mut time = 0;
        let mut samples: Vec<MetricSample> = self.times[..n]
            .iter()
            .map(|d| {
                time += d;
                MetricSample { time, vertices: Vec::new() }
            })
            .collect();
        for c in &self.vertices {
            let (ins, outs) = (undelta(&c.records_in), undelta(&c.records_out));
            for (i, s) in samples.iter_mut().enumerate() {
                let parallelism = if c.parallelism.len() == 1 { c.parallelism[0] } else { c.parallelism[i] };
                if parallelism == 0 {
                    continue;
                }
                s.vertices.push(VertexSample {
                    uid: c.uid.clone(),
                    parallelism,
                    busy: c.busy[i] as f64 / 10.0,
                    backpressured: c.backpressured[i] as f64 / 10.0,
                    records_in: ins[i],
                    records_out: outs[i],
                    lag: c.lag.get(i).copied().flatten(),
                });
            }
        }
        samples
    }
}

/// `#[serde(with = "...")]` for a history written as a [`CompactHistory`].
pub mod compact {
    use super::*;

    pub fn serialize<S: Serializer>(samples: &[MetricSample], s: S) -> Result<S::Ok, S::Error> {
        CompactHistory::encode(samples).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MetricSample>, D::Error> {
        Ok(CompactHistory::deserialize(d)?.decode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full 3-minute window sampled every 10 s (19 samples) of a 5-vertex job:
    /// a source with a lag, four vertices without, counters in the millions.
    pub(crate) fn full_window() -> Vec<MetricSample> {
        let uids = ["5d3c0f9a8e21b7c4", "a1f07e3b92c4d855", "0e9b4c7d21a3f6e8", "7c2a9e1f4b8d0365", "f3b8d6a0c5e1927b"];
        (0..19)
            .map(|k| MetricSample {
                time: 1_767_225_600 + 10 * k,
                vertices: uids
                    .iter()
                    .enumerate()
                    .map(|(v, uid)| VertexSample {
                        uid: uid.to_string(),
                        parallelism: [4, 8, 8, 6, 2][v],
                        busy: ((k * 37 + v as i64 * 113) % 9000) as f64 / 10.0 + 100.0,
                        backpressured: ((k * 53 + v as i64 * 71) % 4000) as f64 / 10.0,
                        records_in: 123_456_789 + (k as u64) * (98_765 + v as u64 * 1_234),
                        records_out: 120_000_000 + (k as u64) * (97_531 + v as u64 * 4_321),
                        lag: (v == 0).then_some(15_000 + (k as u64 * 7_919) % 20_000),
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn a_history_round_trips_through_its_columns() {
        let h = full_window();
        let json = serde_json::to_string(&CompactHistory::encode(&h)).unwrap();
        let back: CompactHistory = serde_json::from_str(&json).unwrap();
        assert_eq!(back.decode(), h);
        assert_eq!(CompactHistory::encode(&[]).decode(), vec![]);
    }

    #[test]
    fn a_vertex_missing_from_a_sample_and_a_changed_parallelism_round_trip() {
        let mut h = full_window();
        h.truncate(3);
        h[1].vertices.remove(2);
        h[2].vertices[0].parallelism = 5;
        h[2].vertices[0].lag = None;
        // Vertex order is by first appearance: the vertex missing in the
        // middle sample stays in place in the others.
        assert_eq!(CompactHistory::encode(&h).decode(), h);
    }

    #[test]
    fn a_damaged_history_ends_at_its_shortest_column() {
        let h = full_window();
        let mut c = CompactHistory::encode(&h);
        c.vertices[3].busy.truncate(7);
        c.vertices[0].lag.truncate(9);
        assert_eq!(c.decode(), h[..7].to_vec());
    }

    #[test]
    fn a_full_window_of_five_vertices_is_small() {
        let h = full_window();
        let old = serde_json::to_string(&h).unwrap().len();
        let new = serde_json::to_string(&CompactHistory::encode(&h)).unwrap().len();
        println!("history of 19 samples x 5 vertices: per-sample objects {old} bytes, columns {new} bytes");
        assert!(old > 10_000, "{old}");
        // 12,455 and 2,885 bytes when this was written: the old form was the ~12 KB the
        // autoscaler's note measured for the same window.
        assert!(new < 3_000 && new * 4 < old, "{new} bytes, from {old}");
    }
}
