//! Each deployment color's NetworkPolicy `<instance>-engine`, on by default
//! (`--engine-network-policy`, the Helm value `networkPolicy.engine.enabled`).
//! It selects the color's engine pods and admits:
//! - the same color's engine pods, on every port: the coordinator's RPC (6123),
//!   the workers' data exchange (6124) and the REST API (8081);
//! - the operator's pods (label `app.kubernetes.io/name: sluice-operator`, in the
//!   operator's namespace when it knows it) on the REST port;
//! - pods of the namespaces listed for metrics (`--engine-metrics-namespace`,
//!   e.g. Prometheus's) on the REST port, whose read-only routes serve `/metrics`.
//!
//! With `--engine-access apiserver-proxy` the REST port admits any source, since
//! the calls come from the API server, which a policy cannot name.
//!
//! Nothing else reaches them: another job's workers, or any pod of the cluster,
//! can neither register nor send data nor call the REST API (whose mutating
//! routes also need the engine token). Egress stays open: S3 and the job's
//! sources and sinks are the user's. Kubelet probes come from the node, which
//! NetworkPolicy implementations admit. A cluster whose network plugin does not
//! enforce NetworkPolicies (the sandbox's) keeps the object and ignores it.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Blueprint;

/// The engine's REST port.
const REST_PORT: i32 = 8081;

/// Who besides the job's own pods may reach them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnginePolicy {
    /// The operator's namespace (`POD_NAMESPACE`); `None`: its pods in any namespace.
    pub operator_namespace: Option<String>,
    /// Namespaces whose pods may scrape the engines' `/metrics`.
    pub metrics_namespaces: Vec<String>,
    /// The REST port admits any source: an operator that reaches the engines
    /// through the API server's proxy (`--engine-access apiserver-proxy`) calls
    /// from the API server, which a NetworkPolicy cannot name. The RPC and data
    /// ports stay the job's own; the REST API's mutating routes need the token.
    pub rest_from_anywhere: bool,
}

pub fn name(instance: &str) -> String {
    format!("{instance}-engine")
}

fn namespace(name: &str) -> LabelSelector {
    let labels = BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())]);
    LabelSelector { match_labels: Some(labels), ..Default::default() }
}

pub fn build(d: &Blueprint, policy: &EnginePolicy) -> NetworkPolicy {
    let pods = |labels: BTreeMap<String, String>| LabelSelector { match_labels: Some(labels), ..Default::default() };
    let rest = Some(vec![NetworkPolicyPort {
        port: Some(IntOrString::Int(REST_PORT)),
        protocol: Some("TCP".into()),
        ..Default::default()
    }]);
    let operator = NetworkPolicyPeer {
        pod_selector: Some(pods(BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            "sluice-operator".to_string(),
        )]))),
        namespace_selector: Some(policy.operator_namespace.as_deref().map(namespace).unwrap_or_default()),
        ..Default::default()
    };
    let mut ingress = vec![
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer { pod_selector: Some(pods(d.selector(None))), ..Default::default() }]),
            ports: None,
        },
        NetworkPolicyIngressRule { from: (!policy.rest_from_anywhere).then(|| vec![operator]), ports: rest.clone() },
    ];
    if !policy.metrics_namespaces.is_empty() {
        let from = policy
            .metrics_namespaces
            .iter()
            .map(|ns| NetworkPolicyPeer { namespace_selector: Some(namespace(ns)), ..Default::default() })
            .collect();
        ingress.push(NetworkPolicyIngressRule { from: Some(from), ports: rest });
    }
    NetworkPolicy {
        metadata: d.meta(name(&d.instance()), None),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pods(d.selector(None))),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::testing;

    #[test]
    fn only_the_colors_pods_the_operator_and_the_metrics_namespaces_get_in() {
        let spec = testing::spec();
        let d = testing::blueprint(&spec);
        let policy = EnginePolicy {
            operator_namespace: Some("sluice-system".into()),
            metrics_namespaces: vec!["monitoring".into()],
            rest_from_anywhere: false,
        };
        let np = build(&d, &policy);
        assert_eq!(np.metadata.name.as_deref(), Some("clicks-engine"));
        let spec = np.spec.unwrap_or_default();
        assert_eq!(spec.pod_selector.and_then(|s| s.match_labels), Some(d.selector(None)));
        let rules = serde_json::to_value(spec.ingress.unwrap_or_default()).unwrap();
        let expected = serde_json::json!([
            {"from": [{"podSelector": {"matchLabels": d.selector(None)}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "sluice-system"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "sluice-operator"}}}],
             "ports": [{"port": 8081, "protocol": "TCP"}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
             "ports": [{"port": 8081, "protocol": "TCP"}]}
        ]);
        assert_eq!(rules, expected);
        // Without its namespace, the operator's pods in any namespace; no metrics rule.
        let open = build(&d, &EnginePolicy::default());
        let rules = serde_json::to_value(open.spec.unwrap_or_default().ingress.unwrap_or_default()).unwrap();
        assert_eq!(rules[1]["from"][0]["namespaceSelector"], serde_json::json!({}));
        assert_eq!(rules.as_array().map(Vec::len), Some(2));
        // Through the API server's proxy: the REST port from anywhere, the rest still closed.
        let proxy = build(&d, &EnginePolicy { rest_from_anywhere: true, ..EnginePolicy::default() });
        let rules = serde_json::to_value(proxy.spec.unwrap_or_default().ingress.unwrap_or_default()).unwrap();
        assert_eq!(rules[1], serde_json::json!({"ports": [{"port": 8081, "protocol": "TCP"}]}));
        assert_eq!(rules[0]["from"][0]["podSelector"]["matchLabels"], serde_json::json!(d.selector(None)));
    }
}
