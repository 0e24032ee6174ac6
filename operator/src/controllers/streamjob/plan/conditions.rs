//! The kstatus conditions of a StreamJob, from its planned status.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{Phase, StreamJobStatus};

/// The reason of the `Stalled` condition of an invalid spec.
const INVALID_SPEC: &str = "InvalidSpec";

/// Whether `error`, the status's, is the error of an invalid spec: the `Stalled`
/// condition written with it reports it as one.
pub fn reports_invalid_spec(conditions: &[Condition], error: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == INVALID_SPEC && c.message == error)
}

/// kstatus conditions: `Ready`, `Reconciling` and `Stalled`, each with
/// `observedGeneration`. A condition keeps its `lastTransitionTime` until its
/// status changes, so a reconcile never rewrites a timestamp for nothing.
pub fn conditions(
    st: &StreamJobStatus,
    invalid: Option<&str>,
    generation: i64,
    now: Timestamp,
    previous: &[Condition],
) -> Vec<Condition> {
    let phase = st.phase;
    let ready = matches!(phase, Phase::Stable | Phase::Finished | Phase::Suspended) && invalid.is_none();
    let reconciling = matches!(
        phase,
        Phase::Created | Phase::Deploying | Phase::Running | Phase::Upgrading | Phase::RollingBack | Phase::Deleting
    ) && invalid.is_none();
    let (stalled, stalled_reason, stalled_msg) = match (invalid, phase) {
        (Some(e), _) => (true, INVALID_SPEC, e.to_string()),
        (None, Phase::Failed) => (true, "Failed", st.error.clone().unwrap_or_else(|| "the job failed".into())),
        (None, Phase::RolledBack) => {
            (true, "RolledBack", st.error.clone().unwrap_or_else(|| "the upgrade was rolled back".into()))
        }
        // A blue-green cutover of this generation was given up before it touched the job.
        (None, _)
            if st.cutover.is_none()
                && st.last_cutover.as_ref().is_some_and(|c| c.outcome == "aborted" && c.generation == generation)
                && st.rolled_back_generation == Some(generation) =>
        {
            let why = st.last_cutover.as_ref().and_then(|c| c.reason.clone()).unwrap_or_default();
            (true, "CutoverAborted", format!("the blue-green cutover was aborted: {why}"))
        }
        _ => (false, phase.as_str(), String::new()),
    };
    let make = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_string();
        let last = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(now.round(jiff::Unit::Second).unwrap_or(now)));
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            observed_generation: Some(generation),
            last_transition_time: last,
        }
    };
    let mut out = vec![
        make("Ready", ready, phase.as_str(), format!("phase {phase}")),
        make(
            "Reconciling",
            reconciling,
            phase.as_str(),
            if reconciling { format!("phase {phase}") } else { String::new() },
        ),
        make("Stalled", stalled, stalled_reason, stalled_msg),
    ];
    // With the autoscaler on: whether it acts, and whether its scale-ups helped.
    if let Some(a) = &st.autoscaler {
        out.push(match &a.blocked {
            Some(why) => make("ScalingActive", false, "HorizontalPodAutoscalerConflict", why.clone()),
            None => make("ScalingActive", true, "Autoscaling", a.waiting.clone().unwrap_or_default()),
        });
        out.push(if a.ineffective.is_empty() {
            make("ScalingEffective", true, "ScalingEffective", String::new())
        } else {
            // By the names `explain` and the last decision show, where known.
            let named: Vec<String> = a
                .ineffective
                .iter()
                .map(|uid| {
                    let v = a.last_decision.as_ref().and_then(|d| d.vertices.iter().find(|v| &v.uid == uid));
                    v.map_or_else(|| format!("uid {uid}"), |v| format!("vertex {} ({})", v.id, v.name))
                })
                .collect();
            let message = format!(
                "scaling up {} did not raise its throughput; not scaled up again until the SQL or parallelism changes",
                named.join(", ")
            );
            make("ScalingEffective", false, "IneffectiveScaling", message)
        });
    }
    out
}
