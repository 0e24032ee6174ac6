//! What every reconcile of both controllers shares: the clients, the operator's
//! defaults for what a StreamJob leaves unset, the validation cache and the
//! watch caches of the StreamJob controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::crd::{S3Spec, StreamJobSpec, StreamJobStatus};
use crate::engine::EngineClient;
use crate::error::InvalidSpec;
use crate::metrics::Metrics;

/// A cached validation: the hash of the SQL it judged, and the verdict.
pub type Validation = (u64, Result<(), InvalidSpec>);

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub engine: EngineClient,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// The operator's own S3 endpoint, for an operator outside the cluster.
    pub s3_endpoint: Option<String>,
    /// `--default-engine-image` and `--default-s3-*`: for jobs that set none.
    pub defaults: Defaults,
    pub version: String,
    /// The last validation per job: (hash of the SQL, result).
    pub validated: Mutex<HashMap<String, Validation>>,
    /// Child caches per watch scope (`None`: all namespaces), filled by [`crate::controllers::streamjob::run`].
    pub caches: std::sync::RwLock<Vec<(Option<String>, Caches)>>,
    /// Whether this process may still act; asked before every write.
    pub leadership: Arc<crate::leader::Leadership>,
}

/// The operator's defaults for what a StreamJob leaves unset (the Helm values
/// `engine.image` and `s3.defaults`).
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    pub image: Option<String>,
    pub s3: Option<S3Spec>,
}

/// The spec the operator acts on: the object's, with `image` and `s3` filled in when it
/// sets none — from the deployed spec (a new operator default must not restart a running
/// job, or move its state to another store), else from the operator's defaults. An image
/// that stays unset is reported by validation.
pub fn effective_spec<'a>(
    spec: &'a StreamJobSpec,
    status: &StreamJobStatus,
    defaults: &Defaults,
) -> std::borrow::Cow<'a, StreamJobSpec> {
    if spec.image.is_some() && spec.s3.is_some() {
        return std::borrow::Cow::Borrowed(spec);
    }
    let deployed = status.reconciled_spec.as_ref();
    let mut s = spec.clone();
    if s.image.is_none() {
        s.image = deployed.and_then(|d| d.image.clone()).or_else(|| defaults.image.clone());
    }
    if s.s3.is_none() {
        s.s3 = deployed.and_then(|d| d.s3.clone()).or_else(|| defaults.s3.clone());
    }
    std::borrow::Cow::Owned(s)
}

/// Caches of one watch scope's children, fed by the same watches that trigger reconciles.
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub stateful_sets: Store<StatefulSet>,
    pub config_maps: Store<ConfigMap>,
    pub pods: Store<Pod>,
}

impl Context {
    /// The caches that cover namespace `ns`, once they hold a complete list.
    pub async fn caches(&self, ns: &str) -> Option<Caches> {
        let c = {
            let all = self.caches.read().ok()?;
            all.iter().find(|(scope, _)| scope.as_deref().is_none_or(|s| s == ns)).map(|(_, c)| c.clone())?
        };
        c.deployments.wait_until_ready().await.ok()?;
        c.stateful_sets.wait_until_ready().await.ok()?;
        c.config_maps.wait_until_ready().await.ok()?;
        c.pods.wait_until_ready().await.ok()?;
        Some(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crd::DeployedSpec;

    fn spec(image: Option<&str>) -> StreamJobSpec {
        let mut v = serde_json::json!({"sql": "x"});
        if let Some(i) = image {
            v["image"] = i.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn deployed(image: &str) -> StreamJobStatus {
        StreamJobStatus { reconciled_spec: Some(DeployedSpec::resolve(&spec(Some(image)), "x")), ..Default::default() }
    }

    fn defaults(image: &str, endpoint: &str) -> Defaults {
        let s3 = S3Spec { endpoint: Some(endpoint.into()), ..Default::default() };
        Defaults { image: Some(image.into()), s3: Some(s3) }
    }

    #[test]
    fn image_and_s3_are_the_jobs_else_the_deployed_ones_else_the_operators_defaults() {
        let none = StreamJobStatus::default();
        let new = defaults("sluice/engine:0.2.0", "http://new:9000");
        let mut own = spec(Some("sluice/engine:pinned"));
        own.s3 = Some(S3Spec { endpoint: Some("http://own:9000".into()), ..Default::default() });
        let e = effective_spec(&own, &deployed("old"), &new);
        assert!(matches!(e, std::borrow::Cow::Borrowed(_)));
        assert_eq!(e.image.as_deref(), Some("sluice/engine:pinned"));
        let unset = spec(None);
        // A running job keeps its image and store when the operator's defaults change.
        let mut was = spec(Some("sluice/engine:0.1.0"));
        was.s3 = Some(S3Spec { endpoint: Some("http://old:9000".into()), ..Default::default() });
        let st = StreamJobStatus { reconciled_spec: Some(DeployedSpec::resolve(&was, "x")), ..Default::default() };
        let e = effective_spec(&unset, &st, &new);
        assert_eq!(e.image.as_deref(), Some("sluice/engine:0.1.0"));
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://old:9000"));
        // A deployed job that had no S3 gets the default (nothing of it is in a store yet).
        let e = effective_spec(&unset, &deployed("sluice/engine:0.1.0"), &new);
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://new:9000"));
        let e = effective_spec(&unset, &none, &new);
        assert_eq!(e.image.as_deref(), Some("sluice/engine:0.2.0"));
        assert_eq!(e.s3.as_ref().and_then(|s| s.endpoint.as_deref()), Some("http://new:9000"));
        let e = effective_spec(&unset, &none, &Defaults::default());
        assert_eq!((e.image.clone(), e.s3.clone()), (None, None));
    }
}
