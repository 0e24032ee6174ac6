//! The PodDisruptionBudget: voluntary disruptions (drains) take one engine pod at a time.
//! Any lost pod restarts the job from its newest checkpoint, so this bounds the restarts
//! a drain causes without ever blocking it.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Blueprint;

pub fn build(d: &Blueprint) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: d.meta(d.instance(), None),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(d.selector(None)), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
