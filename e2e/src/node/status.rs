//! Pod status from container states, following the kubelet's `getPhase` and
//! condition rules. Pure: the pod worker feeds it what it observed.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What the agent knows about one container.
#[derive(Debug, Clone, PartialEq)]
pub enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Time,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        message: Option<String>,
        started_at: Option<Time>,
        finished_at: Time,
    },
}

impl CState {
    pub fn waiting(reason: &str, message: Option<String>) -> CState {
        CState::Waiting { reason: reason.into(), message }
    }

    fn to_k8s(&self) -> ContainerState {
        match self {
            CState::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some(reason.clone()), message: message.clone() }),
                ..Default::default()
            },
            CState::Running { started_at } => ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(started_at.clone()) }),
                ..Default::default()
            },
            CState::Terminated { exit_code, signal, reason, message, started_at, finished_at } => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: *exit_code,
                    signal: *signal,
                    reason: Some(reason.clone()),
                    message: message.clone(),
                    started_at: started_at.clone(),
                    finished_at: Some(finished_at.clone()),
                    container_id: None,
                }),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CStatus {
    pub name: String,
    pub image: String,
    pub state: CState,
    pub last: Option<CState>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
    pub container_id: Option<String>,
}

impl CStatus {
    pub fn new(name: &str, image: &str) -> CStatus {
        CStatus {
            name: name.into(),
            image: image.into(),
            state: CState::waiting("ContainerCreating", None),
            last: None,
            restart_count: 0,
            ready: false,
            started: false,
            container_id: None,
        }
    }

    fn to_k8s(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: format!("sluice://{}", self.image),
            container_id: self.container_id.clone(),
            state: Some(self.state.to_k8s()),
            last_state: Some(self.last.as_ref().map(CState::to_k8s).unwrap_or_default()),
            restart_count: self.restart_count,
            ready: self.ready,
            started: Some(self.started),
            ..Default::default()
        }
    }
}

/// The pod phase, as the kubelet's `getPhase` computes it.
pub fn phase(init_done: bool, init: &[CStatus], main: &[CStatus], restart_policy: &str) -> &'static str {
    if !init_done {
        let init_failed_for_good = restart_policy == "Never"
            && init.iter().any(|c| matches!(c.state, CState::Terminated { exit_code, .. } if exit_code != 0));
        return if init_failed_for_good { "Failed" } else { "Pending" };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in main {
        match &c.state {
            CState::Running { .. } => running += 1,
            CState::Terminated { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            CState::Waiting { .. } => {
                if c.last.is_some() {
                    stopped += 1
                } else {
                    waiting += 1
                }
            }
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

/// Inputs that do not come from containers.
pub struct PodFacts<'a> {
    pub restart_policy: &'a str,
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: Time,
    pub init_done: bool,
    pub now: Time,
    /// Conditions previously published, to keep `lastTransitionTime` stable.
    pub previous: &'a [PodCondition],
    pub message: Option<String>,
    pub reason: Option<String>,
}

fn condition(prev: &[PodCondition], type_: &str, ok: bool, reason: Option<&str>, now: &Time) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let last = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time: Some(last),
        reason: if ok { None } else { reason.map(str::to_string) },
        ..Default::default()
    }
}

pub fn pod_status(f: &PodFacts<'_>, init: &[CStatus], main: &[CStatus]) -> PodStatus {
    let phase = phase(f.init_done, init, main, f.restart_policy);
    let containers_ready = f.init_done && main.iter().all(|c| c.ready);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let not_ready_reason = if terminal { "PodCompleted" } else { "ContainersNotReady" };
    let conditions = vec![
        condition(f.previous, "PodScheduled", true, None, &f.now),
        condition(f.previous, "Initialized", f.init_done, Some("ContainersNotInitialized"), &f.now),
        condition(f.previous, "ContainersReady", containers_ready, Some(not_ready_reason), &f.now),
        condition(f.previous, "Ready", containers_ready, Some(not_ready_reason), &f.now),
    ];
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(f.host_ip.clone()),
        host_ips: Some(vec![HostIP { ip: f.host_ip.clone() }]),
        pod_ip: f.pod_ip.clone(),
        pod_ips: f.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        start_time: Some(f.start_time.clone()),
        container_statuses: Some(main.iter().map(CStatus::to_k8s).collect()),
        init_container_statuses: if init.is_empty() { None } else { Some(init.iter().map(CStatus::to_k8s).collect()) },
        // The API server sets status.qosClass when it creates the pod, from the
        // containers' requests and limits, and refuses any change: leave it out.
        qos_class: None,
        message: f.message.clone(),
        reason: f.reason.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn c(state: CState, last: bool) -> CStatus {
        let mut s = CStatus::new("c", "img");
        s.state = state;
        if last {
            s.last = Some(CState::waiting("x", None));
        }
        s
    }
    fn term(code: i32) -> CState {
        CState::Terminated {
            exit_code: code,
            signal: None,
            reason: "r".into(),
            message: None,
            started_at: None,
            finished_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }
    }
    fn run() -> CState {
        CState::Running { started_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH) }
    }

    #[test]
    fn phases_follow_the_kubelet() {
        let w = CState::waiting("ContainerCreating", None);
        let cases: Vec<(bool, Vec<CStatus>, &str, &str)> = vec![
            (false, vec![c(w.clone(), false)], "Always", "Pending"),
            (true, vec![c(w.clone(), false)], "Always", "Pending"),
            (true, vec![c(run(), false)], "Always", "Running"),
            (true, vec![c(run(), false), c(w.clone(), false)], "Always", "Pending"),
            // CrashLoopBackOff: waiting with a last termination counts as stopped.
            (true, vec![c(CState::waiting("CrashLoopBackOff", None), true)], "Always", "Running"),
            (true, vec![c(term(0), false)], "Never", "Succeeded"),
            (true, vec![c(term(0), false), c(term(1), false)], "Never", "Failed"),
            (true, vec![c(term(1), false)], "OnFailure", "Running"),
            (true, vec![c(term(0), false)], "OnFailure", "Succeeded"),
        ];
        for (init_done, main, policy, want) in cases {
            assert_eq!(phase(init_done, &[], &main, policy), want, "{main:?} {policy}");
        }
        assert_eq!(phase(false, &[c(term(1), false)], &[], "Never"), "Failed");
        assert_eq!(phase(false, &[c(term(1), false)], &[], "Always"), "Pending");
    }
}
