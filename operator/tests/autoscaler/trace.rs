//! What the autoscaler's load tests record while a job runs, every 2 s: the
//! rescales it decides (from `status.autoscaler.lastDecision`), each blue-green
//! cutover's pause, and from `GET /v1/job/metrics` (through the API server's proxy
//! to the active coordinator) its source's lag and the parallelism the throttled
//! sink runs at; and the autoscaler's own metric samples (`status.autoscaler`),
//! printed per interval as it reckons them (the sources' demand, each vertex's
//! rates, busy time and lag). Times are seconds since the trace began.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use sluice_operator::crd::{MetricSample, StreamJob};

use crate::common::Setup;

#[derive(Debug, Clone)]
pub struct Point {
    pub at: f64,
    /// The source's lag; `None` while the engine does not answer.
    pub lag: Option<u64>,
    /// The throttled sink's parallelism, as the running engine reports it.
    pub slow: Option<usize>,
}

/// A decision that changed the throttled sink's parallelism (`outcome` scaled).
#[derive(Debug, Clone)]
pub struct Rescale {
    /// When it was decided (the decision's own time).
    pub at: f64,
    pub from: i32,
    pub to: i32,
    pub summary: String,
}

pub struct Trace {
    t0: SystemTime,
    pub points: Vec<Point>,
    pub rescales: Vec<Rescale>,
    /// Each blue-green cutover's pause (ms), as `status.lastCutover` reports it.
    pub pauses: Vec<Option<i64>>,
    /// Each change of `status.autoscaler.waiting` (why it decides nothing yet).
    pub waiting: Vec<(f64, String)>,
    /// The autoscaler's metric samples (`status.autoscaler.samples`), each once,
    /// with the run they belong to (`status.autoscaler.run`).
    pub samples: Vec<(String, MetricSample)>,
    decided: Option<String>,
    cutover: Option<String>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace {
            t0: SystemTime::now(),
            points: Vec::new(),
            rescales: Vec::new(),
            pauses: Vec::new(),
            waiting: Vec::new(),
            samples: Vec::new(),
            decided: None,
            cutover: None,
        }
    }

    /// Seconds since the trace began.
    pub fn now(&self) -> f64 {
        self.t0.elapsed().map_or(0.0, |d| d.as_secs_f64())
    }

    fn since_t0(&self, unix: i64) -> f64 {
        unix as f64 - self.t0.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }

    /// Records the job's state now.
    pub async fn sample(&mut self, t: &Setup, name: &str) -> Option<StreamJob> {
        let j = t.job(name).await?;
        let st = j.status.clone().unwrap_or_default();
        if let Some(d) = st.autoscaler.as_ref().and_then(|a| a.last_decision.as_ref())
            && d.outcome == "scaled"
            && self.decided.as_ref() != Some(&d.time)
        {
            self.decided = Some(d.time.clone());
            if let Some(v) = d.vertices.iter().find(|v| v.name.contains("slow") && v.decided != v.parallelism) {
                let at = d.time.parse::<jiff::Timestamp>().map_or(self.now(), |t| self.since_t0(t.as_second()));
                self.rescales.push(Rescale { at, from: v.parallelism, to: v.decided, summary: d.summary.clone() });
            }
        }
        if let Some(a) = &st.autoscaler {
            for m in &a.history {
                if self.samples.last().is_none_or(|l| l.1.time < m.time) {
                    self.samples.push((a.run.clone(), m.clone()));
                }
            }
        }
        let waiting = st.autoscaler.as_ref().and_then(|a| a.waiting.clone()).unwrap_or_default();
        if self.waiting.last().map(|w| &w.1) != Some(&waiting) {
            self.waiting.push((self.now(), waiting));
        }
        if let Some(c) = &st.last_cutover
            && self.cutover.as_ref() != Some(&c.finished)
        {
            self.cutover = Some(c.finished.clone());
            self.pauses.push(c.pause);
        }
        // A coordinator that is gone (suspended, mid-upgrade) may not answer at all.
        let (lag, slow) = match &st.ui {
            Some(ui) => tokio::time::timeout(Duration::from_secs(3), metrics(t, &ui.proxy_path))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or((None, None)),
            None => (None, None),
        };
        self.points.push(Point { at: self.now(), lag, slow });
        Some(j)
    }

    /// Samples every 2 s until `done` holds, for at most `timeout`.
    pub async fn until(
        &mut self,
        t: &Setup,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&StreamJob, &Trace) -> bool,
    ) -> Result<StreamJob> {
        let deadline = self.now() + timeout.as_secs_f64();
        loop {
            if let Some(j) = self.sample(t, name).await
                && done(&j, self)
            {
                return Ok(j);
            }
            if self.now() > deadline {
                bail!("{what} did not come within {timeout:?}; rescales {:#?}", self.rescales);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// The first time at or after `from` that the lag was at most `rows`.
    pub fn lag_at_most(&self, rows: u64, from: f64) -> Option<f64> {
        self.points.iter().find(|p| p.at >= from && p.lag.is_some_and(|l| l <= rows)).map(|p| p.at)
    }

    /// The first time the engine ran the throttled sink at `p`.
    pub fn running_at(&self, p: i32) -> Option<f64> {
        self.points.iter().find(|x| x.slow == Some(p as usize)).map(|x| x.at)
    }

    /// After a scale-down to `p`: waits until the engine runs it, then for a minute
    /// (or the job's end) in which nothing else changes. Returns when it ran.
    pub async fn settled_at(&mut self, t: &Setup, name: &str, p: i32, what: &str) -> Result<f64> {
        self.until(t, name, Duration::from_secs(120), what, |_, tr| tr.running_at(p).is_some()).await?;
        let running = self.running_at(p).unwrap_or_default();
        self.until(t, name, Duration::from_secs(300), "Finished", |j, tr| {
            crate::common::phase(j) == Some(sluice_operator::crd::Phase::Finished)
                || tr.now() > running + 60.0
                || tr.rescales.len() > 2
        })
        .await?;
        if self.rescales.len() > 2 {
            bail!("a third rescale: {:#?}", self.rescales);
        }
        Ok(running)
    }

    /// The lag and the throttled sink's parallelism about every 10 s, to print.
    pub fn timeline(&self) -> String {
        let mut out = String::from("t(s) lag p");
        let mut next = 0.0;
        for p in &self.points {
            if p.at >= next {
                out.push_str(&format!("\n{:.0} {:?} {:?}", p.at, p.lag, p.slow));
                next = p.at + 10.0;
            }
        }
        out.push_str("\nt(s) status.autoscaler.waiting");
        for (at, w) in &self.waiting {
            out.push_str(&format!("\n{at:.0} {w}"));
        }
        out
    }

    /// Per interval between the autoscaler's samples: the sources' demand as it
    /// reckons it (records read plus lag growth, per second) and each vertex's
    /// rate, busy ms/s and lag, to print. Counters start over with each run (a
    /// rescale, a resume), so no interval spans two.
    pub fn intervals(&self) -> String {
        let mut out = String::from("t(s) dt demand/s | per vertex: uid p in/s out/s busy lag");
        for w in self.samples.windows(2) {
            let ((ra, a), (rb, b)) = (&w[0], &w[1]);
            if ra != rb {
                out.push_str(&format!("\n{:.0} run {rb}", self.since_t0(b.time)));
                continue;
            }
            let dt = (b.time - a.time).max(1) as f64;
            let mut demand = 0.0;
            let mut cols = String::new();
            for y in &b.vertices {
                let Some(x) = a.vertices.iter().find(|x| x.uid == y.uid) else { continue };
                let rin = y.records_in.saturating_sub(x.records_in) as f64 / dt;
                let rout = y.records_out.saturating_sub(x.records_out) as f64 / dt;
                if let (Some(la), Some(lb)) = (x.lag, y.lag) {
                    demand += rout + (lb as f64 - la as f64) / dt;
                }
                let uid: String = y.uid.chars().take(6).collect();
                cols.push_str(&format!(" | {uid} {} {rin:.0} {rout:.0} {:.0} {:?}", y.parallelism, y.busy, y.lag));
            }
            out.push_str(&format!("\n{:.0} {dt:.0} {demand:.0}{cols}", self.since_t0(b.time)));
        }
        out
    }

    /// The largest lag at or after `from`.
    pub fn peak_lag(&self, from: f64) -> u64 {
        self.points.iter().filter(|p| p.at >= from).filter_map(|p| p.lag).max().unwrap_or(0)
    }
}

/// The source's lag and the throttled sink's parallelism, from the engine's metrics.
async fn metrics(t: &Setup, proxy: &str) -> Result<(Option<u64>, Option<usize>)> {
    let req = http::Request::get(format!("{proxy}v1/job/metrics")).body(Vec::new())?;
    let body = t.client.request_text(req).await?;
    let m: serde_json::Value = serde_json::from_str(&body)?;
    let vertices = m["vertices"].as_array().cloned().unwrap_or_default();
    let lag = vertices.iter().find_map(|v| v["lag"].as_u64());
    let slow = vertices
        .iter()
        .find(|v| v["name"].as_str().is_some_and(|n| n.contains("slow")))
        .and_then(|v| v["parallelism"].as_u64())
        .map(|p| p as usize);
    Ok((lag, slow))
}
