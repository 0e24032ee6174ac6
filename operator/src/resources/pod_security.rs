//! What a StreamJob's `podTemplate` may not do without its namespace's consent:
//! widen the engine pods' privileges beyond the Pod Security "restricted" profile
//! that the operator's own template meets, or give them API access.
//!
//! Creating a StreamJob is close to creating pods, so the template is checked
//! before anything is deployed: a template that widens privileges is refused
//! with every field that does, unless the namespace carries
//! [`ALLOW_LABEL`]` = "true"` (set by whoever administers the namespace). Pure:
//! [`widenings`] reads the template's JSON.

use serde_json::Value;

/// The namespace label that allows privileged pod templates.
pub const ALLOW_LABEL: &str = "sluice.dev/allow-privileged-pod-template";

/// The capability "restricted" allows a container to add.
const ALLOWED_CAPABILITY: &str = "NET_BIND_SERVICE";

/// Every field of `template` (a `podTemplate`) that widens the pods' privileges,
/// as `path: why`.
pub fn widenings(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let spec = &template["spec"];
    for field in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
        let widened = if field == "hostUsers" { spec[field] == false } else { spec[field] == true };
        if widened {
            found.push(format!("spec.{field}: {} shares the node's namespaces", spec[field]));
        }
    }
    if spec["automountServiceAccountToken"] == true {
        found.push("spec.automountServiceAccountToken: true gives the engine pods API access".into());
    }
    security_context(&spec["securityContext"], "spec.securityContext", &mut found);
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        if !v["hostPath"].is_null() {
            found.push(format!("spec.volumes[{i}].hostPath mounts the node's files"));
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let path = format!("spec.{list}[{i}] ({})", c["name"].as_str().unwrap_or("unnamed"));
            let sc = &c["securityContext"];
            security_context(sc, &format!("{path}.securityContext"), &mut found);
            if sc["privileged"] == true {
                found.push(format!("{path}.securityContext.privileged: true"));
            }
            let added: Vec<&str> = sc["capabilities"]["add"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|c| *c != ALLOWED_CAPABILITY)
                .collect();
            if !added.is_empty() {
                found.push(format!("{path}.securityContext.capabilities.add: {added:?}"));
            }
            if sc["procMount"].as_str().is_some_and(|p| p != "Default") {
                found.push(format!("{path}.securityContext.procMount: {}", sc["procMount"]));
            }
            // The operator's engine container is restricted already; a container the
            // template adds must say so itself, or it runs with the runtime's defaults.
            let added_container = c["name"].as_str() != Some(super::pod::CONTAINER);
            if added_container {
                if sc["allowPrivilegeEscalation"] != false {
                    found.push(format!("{path} does not set securityContext.allowPrivilegeEscalation: false"));
                }
                let drops_all = sc["capabilities"]["drop"].as_array().is_some_and(|d| d.iter().any(|c| c == "ALL"));
                if !drops_all {
                    found.push(format!("{path} does not drop ALL capabilities (securityContext.capabilities.drop)"));
                }
            } else if sc["allowPrivilegeEscalation"] == true {
                found.push(format!("{path}.securityContext.allowPrivilegeEscalation: true"));
            }
        }
    }
    found
}

/// The fields a pod's or a container's security context shares.
fn security_context(sc: &Value, path: &str, found: &mut Vec<String>) {
    if sc["runAsNonRoot"] == false {
        found.push(format!("{path}.runAsNonRoot: false"));
    }
    if sc["runAsUser"] == 0 {
        found.push(format!("{path}.runAsUser: 0 runs as root"));
    }
    if sc["seccompProfile"]["type"] == "Unconfined" {
        found.push(format!("{path}.seccompProfile.type: Unconfined"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn harmless_templates_pass() {
        for t in [
            json!({}),
            json!({"metadata": {"labels": {"team": "ads"}}, "spec": {"serviceAccountName": "s3-writer",
                "containers": [{"name": "engine", "env": [{"name": "RUST_BACKTRACE", "value": "1"}],
                "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}],
                "nodeSelector": {"pool": "stream"}, "tolerations": [{"key": "k", "operator": "Exists"}]}}),
            json!({"spec": {"containers": [{"name": "log-shipper", "image": "fluent-bit",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}),
        ] {
            assert_eq!(widenings(&t), Vec::<String>::new(), "{t}");
        }
    }

    #[test]
    fn every_widening_is_named() {
        let t = json!({"spec": {
            "hostNetwork": true, "hostPID": true, "automountServiceAccountToken": true,
            "securityContext": {"runAsUser": 0},
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}],
            "containers": [
                {"name": "engine", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}},
                {"name": "sidecar", "image": "busybox"}
            ],
            "initContainers": [{"name": "setup", "securityContext": {"runAsNonRoot": false,
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "Unconfined"}}}]
        }});
        let found = widenings(&t);
        for expected in [
            "spec.hostNetwork",
            "spec.hostPID",
            "spec.automountServiceAccountToken",
            "spec.securityContext.runAsUser: 0",
            "spec.volumes[0].hostPath",
            "spec.containers[0] (engine).securityContext.privileged",
            "capabilities.add: [\"SYS_ADMIN\"]",
            "spec.containers[1] (sidecar) does not set securityContext.allowPrivilegeEscalation",
            "spec.containers[1] (sidecar) does not drop ALL",
            "spec.initContainers[0] (setup).securityContext.runAsNonRoot: false",
            "seccompProfile.type: Unconfined",
        ] {
            assert!(found.iter().any(|f| f.contains(expected)), "{expected} not in {found:#?}");
        }
        assert_eq!(found.len(), 11, "{found:#?}");
    }
}
