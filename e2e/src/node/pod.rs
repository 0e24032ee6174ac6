//! One task per pod: sandbox (network namespace, /etc files, volumes), init
//! containers in order, then the containers, with probes, restarts with
//! back-off, status reporting and graceful deletion.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};

use super::Ctx;
use super::container::{self, Launch, Mount, StartError};
use super::probe;
use super::status::{CState, CStatus, PodFacts, pod_status};
use crate::net;

/// Set when the agent stops: pods are then killed without deleting their API objects.
pub static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

const MAX_BACKOFF: Duration = Duration::from_secs(300);
const TICK: Duration = Duration::from_millis(100);
/// How often ConfigMap/Secret volume contents are re-read (the kubelet syncs about every minute).
const VOLUME_REFRESH: Duration = Duration::from_secs(5);

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Liveness,
    Readiness,
}

#[derive(Debug, Default, Clone)]
struct ProbeState {
    next_due: Option<Instant>,
    successes: i32,
    failures: i32,
    in_flight: bool,
    ok: Option<bool>,
}

struct Ctr {
    spec: Container,
    init: bool,
    status: CStatus,
    child: Option<tokio::process::Child>,
    pid: Option<i32>,
    started_at: Option<(Instant, Time)>,
    starts: i32,
    generation: u64,
    backoff: Option<Duration>,
    next_start: Instant,
    kill_deadline: Option<Instant>,
    probes: [ProbeState; 3],
    done: bool,
    env: Vec<(String, String)>,
}

impl Ctr {
    fn new(spec: Container, init: bool) -> Ctr {
        let status = CStatus::new(&spec.name, spec.image.as_deref().unwrap_or_default());
        Ctr {
            spec,
            init,
            status,
            child: None,
            pid: None,
            started_at: None,
            starts: 0,
            generation: 0,
            backoff: None,
            next_start: Instant::now(),
            kill_deadline: None,
            probes: Default::default(),
            done: false,
            env: Vec::new(),
        }
    }

    fn probe(&self, k: Kind) -> Option<&Probe> {
        match k {
            Kind::Startup => self.spec.startup_probe.as_ref(),
            Kind::Liveness => self.spec.liveness_probe.as_ref(),
            Kind::Readiness => self.spec.readiness_probe.as_ref(),
        }
    }

    fn refresh_ready(&mut self) {
        let running = self.child.is_some() && self.kill_deadline.is_none();
        let started = self.spec.startup_probe.is_none() || self.probes[Kind::Startup as usize].ok == Some(true);
        self.status.started = running && started;
        self.status.ready = if self.init {
            self.done
        } else {
            running
                && started
                && (self.spec.readiness_probe.is_none() || self.probes[Kind::Readiness as usize].ok == Some(true))
        };
    }
}

struct ProbeResult {
    init: bool,
    idx: usize,
    kind: Kind,
    generation: u64,
    ok: bool,
}

pub struct PodWorker {
    ctx: Arc<Ctx>,
    pod: Pod,
    uid: String,
    ns: String,
    name: String,
    pod_dir: PathBuf,
    log_dir: PathBuf,
    netns: String,
    veth: String,
    ip: Option<Ipv4Addr>,
    ip_released: bool,
    sandbox_error: Option<String>,
    next_sandbox_try: Instant,
    volumes: Option<BTreeMap<String, PathBuf>>,
    volume_error: Option<String>,
    next_volume_try: Instant,
    next_volume_refresh: Instant,
    init: Vec<Ctr>,
    main: Vec<Ctr>,
    restart_policy: String,
    start_time: Time,
    last_published: Option<serde_json::Value>,
    prev_conditions: Vec<PodCondition>,
    terminal: bool,
    /// Mount points this pod created on the host (they stay empty there).
    created_mount_points: std::sync::Mutex<Vec<PathBuf>>,
    probe_tx: mpsc::UnboundedSender<ProbeResult>,
}

impl PodWorker {
    pub async fn run(ctx: Arc<Ctx>, mut rx: watch::Receiver<Option<Pod>>) {
        let Some(pod) = rx.borrow_and_update().clone() else { return };
        let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
        let mut w = PodWorker::new(ctx, pod, probe_tx);
        let already_done =
            matches!(w.pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"));
        if already_done {
            w.terminal = true;
        }
        tracing::info!("pod {}/{}: starting worker", w.ns, w.name);
        loop {
            // `changed()` below marks values as seen, so always read the latest.
            let latest = rx.borrow_and_update().clone();
            let gone = match latest {
                Some(p) => {
                    w.pod = p;
                    false
                }
                None => true,
            };
            if gone {
                w.teardown(Duration::from_secs(2), false, &mut rx).await;
                return;
            }
            if w.pod.metadata.deletion_timestamp.is_some() {
                let grace = w.pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
                w.teardown(Duration::from_secs(grace), true, &mut rx).await;
                return;
            }
            if !w.terminal {
                w.step().await;
            }
            w.publish().await;
            tokio::select! {
                r = rx.changed() => if r.is_err() {
                    // The agent is gone: stop quickly.
                    w.teardown(Duration::from_secs(2), false, &mut rx).await;
                    return;
                },
                r = probe_rx.recv() => if let Some(r) = r { w.probe_result(r) },
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn new(ctx: Arc<Ctx>, pod: Pod, probe_tx: mpsc::UnboundedSender<ProbeResult>) -> PodWorker {
        let uid = pod.uid().unwrap_or_default();
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let short: String = uid.chars().filter(|c| *c != '-').take(11).collect();
        let start_time = pod.status.as_ref().and_then(|s| s.start_time.clone()).unwrap_or_else(now);
        PodWorker {
            pod_dir: ctx.cfg.state_dir.join("pods").join(&uid),
            log_dir: ctx.cfg.state_dir.join("logs").join(format!("{ns}_{name}_{uid}")),
            netns: format!("{}{short}", ctx.netns_prefix()),
            veth: format!("sl{short}"),
            ip: None,
            ip_released: false,
            sandbox_error: None,
            next_sandbox_try: Instant::now(),
            volumes: None,
            volume_error: None,
            next_volume_try: Instant::now(),
            next_volume_refresh: Instant::now() + VOLUME_REFRESH,
            init: spec.init_containers.clone().unwrap_or_default().into_iter().map(|c| Ctr::new(c, true)).collect(),
            main: spec.containers.clone().into_iter().map(|c| Ctr::new(c, false)).collect(),
            restart_policy: spec.restart_policy.clone().unwrap_or_else(|| "Always".into()),
            start_time,
            last_published: None,
            prev_conditions: Vec::new(),
            terminal: false,
            created_mount_points: std::sync::Mutex::new(Vec::new()),
            probe_tx,
            ctx,
            pod,
            uid,
            ns,
            name,
        }
    }

    /// Publishes a pod event in the background (events are best effort).
    fn event(&self, warning: bool, reason: &str, note: String) {
        use kube::Resource;
        use kube::runtime::events::{Event, EventType};
        let ctx = self.ctx.clone();
        let reference = self.pod.object_ref(&());
        let ev = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
                tracing::debug!("event: {e}");
            }
        });
    }

    fn init_done(&self) -> bool {
        self.init.iter().all(|c| c.done)
    }

    fn set_waiting_all(&mut self, reason: &str, message: Option<String>) {
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if c.child.is_none() && c.starts == 0 {
                c.status.state = CState::waiting(reason, message.clone());
            }
        }
    }

    async fn step(&mut self) {
        let now_i = Instant::now();
        // 1. Network sandbox.
        if self.ip.is_none() {
            if now_i < self.next_sandbox_try {
                return;
            }
            if let Err(e) = tokio::task::block_in_place(|| self.make_sandbox()) {
                let msg = format!("creating pod sandbox: {e:#}");
                tracing::warn!("pod {}/{}: {msg}", self.ns, self.name);
                self.sandbox_error = Some(msg.clone());
                self.set_waiting_all("ContainerCreating", Some(msg));
                self.next_sandbox_try = now_i + Duration::from_secs(2);
                return;
            }
            self.sandbox_error = None;
        }
        // 2. Volumes.
        if self.volumes.is_none() {
            if now_i < self.next_volume_try {
                return;
            }
            let host_ip = self.ctx.cfg.node_ip.to_string();
            let pod_ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
            match super::volumes::prepare(&self.ctx.client, &self.pod, &self.pod_dir, &host_ip, &pod_ip, false).await {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.volume_error = None;
                    self.set_waiting_all("ContainerCreating", None);
                }
                Err(e) => {
                    let msg = format!("MountVolume.SetUp failed: {e:#}");
                    if self.volume_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!("pod {}/{}: {msg}", self.ns, self.name);
                        self.event(true, "FailedMount", msg.clone());
                    }
                    self.volume_error = Some(msg.clone());
                    self.set_waiting_all("ContainerCreating", Some(msg));
                    self.next_volume_try = now_i + Duration::from_secs(3);
                    return;
                }
            }
        }
        // ConfigMap/Secret/downwardAPI contents follow their sources, as with the kubelet.
        if now_i >= self.next_volume_refresh {
            self.next_volume_refresh = now_i + VOLUME_REFRESH;
            let host_ip = self.ctx.cfg.node_ip.to_string();
            let pod_ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
            if let Err(e) =
                super::volumes::prepare(&self.ctx.client, &self.pod, &self.pod_dir, &host_ip, &pod_ip, true).await
            {
                tracing::debug!("pod {}/{}: refreshing volumes: {e:#}", self.ns, self.name);
            }
        }
        // 3. Exits, liveness kills.
        self.reap();
        // 4. Starts.
        if !self.init_done() {
            if let Some(i) = self.init.iter().position(|c| !c.done) {
                let c = &self.init[i];
                if c.child.is_none()
                    && c.kill_deadline.is_none()
                    && Instant::now() >= c.next_start
                    && !self.init_failed_for_good()
                {
                    self.start(true, i).await;
                }
            }
        } else {
            for i in 0..self.main.len() {
                let c = &self.main[i];
                let waiting = matches!(c.status.state, CState::Waiting { .. });
                if c.child.is_none() && waiting && Instant::now() >= c.next_start {
                    self.start(false, i).await;
                }
            }
        }
        // 5. Probes.
        self.launch_probes();
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            c.refresh_ready();
        }
        // 6. Terminal?
        let facts_phase = super::status::phase(
            self.init_done(),
            &self.init.iter().map(|c| c.status.clone()).collect::<Vec<_>>(),
            &self.main.iter().map(|c| c.status.clone()).collect::<Vec<_>>(),
            &self.restart_policy,
        );
        if facts_phase == "Succeeded" || facts_phase == "Failed" {
            tracing::info!("pod {}/{}: {facts_phase}", self.ns, self.name);
            self.terminal = true;
            self.kill_all(Duration::from_secs(1)).await;
            tokio::task::block_in_place(|| net::delete_netns(&self.netns));
            self.remove_created_mount_points();
            // The status keeps its podIP (as the kubelet's does); the address is free again.
            if let Some(ip) = self.ip
                && !self.ip_released
            {
                self.ctx.release_ip(ip);
                self.ip_released = true;
            }
        }
    }

    fn init_failed_for_good(&self) -> bool {
        self.restart_policy == "Never"
            && self
                .init
                .iter()
                .any(|c| matches!(c.status.state, CState::Terminated { exit_code, .. } if exit_code != 0))
    }

    fn make_sandbox(&mut self) -> anyhow::Result<()> {
        let ip = self.ctx.alloc_ip().ok_or_else(|| anyhow::anyhow!("no free pod address on this node"))?;
        if let Err(e) = net::create_pod_netns(&self.netns, &self.veth, &self.ctx.cfg.bridge, ip, self.ctx.cfg.prefix) {
            self.ctx.release_ip(ip);
            return Err(e);
        }
        std::fs::create_dir_all(self.pod_dir.join("etc"))?;
        let d = &self.ctx.cfg.cluster_domain;
        let ns = &self.ns;
        let host = container::hostname(&self.pod);
        let fqdn = match self.pod.spec.as_ref().and_then(|s| s.subdomain.clone()) {
            Some(sub) => format!("{host}.{sub}.{ns}.svc.{d} "),
            None => String::new(),
        };
        std::fs::write(
            self.pod_dir.join("etc/resolv.conf"),
            format!("nameserver {}\nsearch {ns}.svc.{d} svc.{d} {d}\noptions ndots:5\n", self.ctx.cfg.node_ip),
        )?;
        std::fs::write(
            self.pod_dir.join("etc/hosts"),
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{fqdn}{host}\n"),
        )?;
        std::fs::write(self.pod_dir.join("etc/hostname"), format!("{host}\n"))?;
        self.ip = Some(ip);
        Ok(())
    }

    fn ctr(&mut self, init: bool, i: usize) -> Option<&mut Ctr> {
        if init { self.init.get_mut(i) } else { self.main.get_mut(i) }
    }

    async fn start(&mut self, init: bool, i: usize) {
        let Some(spec) = (if init { self.init.get(i) } else { self.main.get(i) }).map(|c| c.spec.clone()) else {
            return;
        };
        let host_ip = self.ctx.cfg.node_ip.to_string();
        let pod_ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
        let res = self.launch(&spec, &host_ip, &pod_ip).await;
        let pod_name = format!("{}/{}", self.ns, self.name);
        let backoff_initial = Duration::from_secs_f64(self.ctx.cfg.backoff_initial_seconds.max(0.0));
        let ev: Option<(bool, &str, String)>;
        let Some(c) = self.ctr(init, i) else { return };
        match res {
            Ok((child, env)) => {
                let pid = child.id().map(|p| p as i32);
                let t = now();
                c.child = Some(child);
                c.pid = pid;
                c.env = env;
                c.starts += 1;
                c.status.restart_count = c.starts - 1;
                c.generation += 1;
                c.started_at = Some((Instant::now(), t.clone()));
                c.status.state = CState::Running { started_at: t };
                c.status.container_id = pid.map(|p| format!("sluice://{p}"));
                c.kill_deadline = None;
                let now_i = Instant::now();
                for k in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                    let delay = c.probe(k).and_then(|p| p.initial_delay_seconds).unwrap_or(0).max(0) as u64;
                    c.probes[k as usize] =
                        ProbeState { next_due: Some(now_i + Duration::from_secs(delay)), ..Default::default() };
                }
                tracing::info!("pod {pod_name}: container {} started (pid {pid:?})", spec.name);
                ev = Some((false, "Started", format!("Started container {}", spec.name)));
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!("pod {pod_name}: container {}: {} {msg}", spec.name, e.reason());
                ev = Some((true, "Failed", format!("Error: {}: {msg}", e.reason())));
                c.status.state = CState::waiting(e.reason(), Some(msg));
                let b = c.backoff.map(|b| (b * 2).min(MAX_BACKOFF)).unwrap_or(backoff_initial);
                c.backoff = Some(b);
                c.next_start = Instant::now() + b.max(Duration::from_secs(1));
            }
        }
        if let Some((warning, reason, note)) = ev {
            self.event(warning, reason, note);
        }
    }

    async fn launch(
        &self,
        spec: &Container,
        host_ip: &str,
        pod_ip: &str,
    ) -> Result<(tokio::process::Child, Vec<(String, String)>), StartError> {
        let env = container::environment(&self.ctx.client, &self.ctx.dir, &self.pod, spec, host_ip, pod_ip).await?;
        let command_line = container::argv(&self.ctx.cfg, spec, &env)?;
        let vols = self.volumes.clone().unwrap_or_default();
        let mut mounts = Vec::new();
        for f in ["hosts", "resolv.conf", "hostname"] {
            let target = PathBuf::from("/etc").join(f);
            if target.exists() {
                mounts.push(Mount { source: self.pod_dir.join("etc").join(f), target, read_only: false });
            }
        }
        // The host filesystem is the image, but the host's kubeconfig must not
        // be: kube clients prefer it over the in-cluster service account.
        let host_kube = PathBuf::from("/root/.kube");
        if host_kube.is_dir() {
            let empty = self.pod_dir.join("empty-kube");
            let _ = std::fs::create_dir_all(&empty);
            mounts.push(Mount { source: empty, target: host_kube, read_only: true });
        }
        for vm in spec.volume_mounts.iter().flatten() {
            let Some(src) = vols.get(&vm.name) else {
                return Err(StartError::CreateContainerConfigError(format!(
                    "volume {:?} is not defined in the pod",
                    vm.name
                )));
            };
            let mut source = src.clone();
            if let Some(sp) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sp.split('/').any(|c| c == "..") {
                    return Err(StartError::CreateContainerConfigError(format!("invalid subPath {sp:?}")));
                }
                source = source.join(sp);
                if !source.exists() {
                    let _ = std::fs::create_dir_all(&source);
                }
            }
            mounts.push(Mount { source, target: PathBuf::from(&vm.mount_path), read_only: vm.read_only == Some(true) });
        }
        let psc = self.pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
        let csc = spec.security_context.clone().unwrap_or_default();
        let uid = csc.run_as_user.or(psc.run_as_user).map(|u| u as u32);
        let gid = csc.run_as_group.or(psc.run_as_group).map(|g| g as u32);
        let mut supplementary: Vec<u32> = psc.supplemental_groups.iter().flatten().map(|g| *g as u32).collect();
        if let Some(fs) = psc.fs_group {
            supplementary.push(fs as u32);
        }
        let netns =
            container::open_netns(&self.netns).map_err(|e| StartError::CreateContainerError(format!("{e:#}")))?;
        let starts =
            self.init.iter().chain(self.main.iter()).find(|c| c.spec.name == spec.name).map(|c| c.starts).unwrap_or(0);
        let launch = Launch {
            argv: command_line.argv,
            from_image: command_line.from_image,
            env: env.clone(),
            netns,
            join_mnt: None,
            mounts,
            hostname: container::hostname(&self.pod),
            workdir: spec.working_dir.clone().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/")),
            uid,
            gid,
            supplementary,
            log: Some(self.log_dir.join(&spec.name).join(format!("{starts}.log"))),
        };
        // Mount points missing on the host are created by `spawn`; remember
        // them (outermost first) to remove them, if still empty, at teardown.
        let mut created = Vec::new();
        for m in &launch.mounts {
            let mut missing = Vec::new();
            let mut p = m.target.as_path();
            while !p.exists() {
                missing.push(p.to_path_buf());
                match p.parent() {
                    Some(parent) => p = parent,
                    None => break,
                }
            }
            created.extend(missing.into_iter().rev());
        }
        let child = container::spawn(launch).map_err(|e| StartError::CreateContainerError(format!("{e:#}")))?;
        if let Ok(mut c) = self.created_mount_points.lock() {
            for p in created {
                if !c.contains(&p) {
                    c.push(p);
                }
            }
        }
        Ok((child, env))
    }

    fn reap(&mut self) {
        let mut events: Vec<String> = Vec::new();
        let policy = self.restart_policy.clone();
        let pod = self.name.clone();
        let backoff_initial = Duration::from_secs_f64(self.ctx.cfg.backoff_initial_seconds.max(0.0));
        let log_dir = self.log_dir.clone();
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if let (Some(deadline), Some(pid)) = (c.kill_deadline, c.pid)
                && Instant::now() >= deadline
            {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let Some(child) = c.child.as_mut() else { continue };
            let Ok(Some(st)) = child.try_wait() else { continue };
            use std::os::unix::process::ExitStatusExt;
            let (code, signal) = match (st.code(), st.signal()) {
                (Some(code), _) => (code, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                _ => (255, None),
            };
            if let Some(pid) = c.pid {
                // Whatever the container forked dies with it.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let ran = c.started_at.as_ref().map(|(i, _)| i.elapsed()).unwrap_or_default();
            let started_at = c.started_at.take().map(|(_, t)| t);
            let terminated = CState::Terminated {
                exit_code: code,
                signal,
                reason: if code == 0 { "Completed".into() } else { "Error".into() },
                // As the kubelet does: with FallbackToLogsOnError, a failed container's
                // message is the tail of its log (80 lines or 2048 bytes, the smaller).
                message: (code != 0 && c.spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"))
                    .then(|| log_tail(&log_dir.join(&c.spec.name)))
                    .flatten(),
                started_at,
                finished_at: now(),
            };
            tracing::info!("pod {pod}: container {} exited with {code}", c.spec.name);
            c.child = None;
            c.pid = None;
            c.kill_deadline = None;
            c.generation += 1;
            let restart = if c.init {
                if code == 0 {
                    c.done = true;
                    false
                } else {
                    policy != "Never"
                }
            } else {
                policy == "Always" || (policy == "OnFailure" && code != 0)
            };
            if !restart {
                c.status.state = terminated;
                continue;
            }
            if ran >= Duration::from_secs(600) {
                c.backoff = None;
            }
            let delay = match c.backoff {
                None => {
                    c.backoff = Some(backoff_initial);
                    Duration::ZERO
                }
                Some(b) => {
                    c.backoff = Some((b * 2).min(MAX_BACKOFF));
                    b
                }
            };
            c.status.last = Some(terminated);
            if !delay.is_zero() {
                events.push(format!("Back-off restarting failed container {} in pod {pod}", c.spec.name));
            }
            c.status.state = if delay.is_zero() {
                CState::waiting("ContainerCreating", None)
            } else {
                CState::waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {}s restarting failed container={} pod={pod}",
                        delay.as_secs(),
                        c.spec.name
                    )),
                )
            };
            c.next_start = Instant::now() + delay;
        }
        for note in events {
            self.event(true, "BackOff", note);
        }
    }

    fn launch_probes(&mut self) {
        let Some(ip) = self.ip else { return };
        let now_i = Instant::now();
        let netns = self.netns.clone();
        for (init, list) in [(true, &mut self.init), (false, &mut self.main)] {
            for (idx, c) in list.iter_mut().enumerate() {
                let (Some(pid), true) = (c.pid, c.kill_deadline.is_none()) else { continue };
                let started = c.spec.startup_probe.is_none() || c.probes[Kind::Startup as usize].ok == Some(true);
                let kinds: &[Kind] = if started { &[Kind::Liveness, Kind::Readiness] } else { &[Kind::Startup] };
                for &k in kinds {
                    let Some(p) = c.probe(k).cloned() else { continue };
                    let st = &mut c.probes[k as usize];
                    if st.in_flight || st.next_due.is_none_or(|d| now_i < d) {
                        continue;
                    }
                    st.in_flight = true;
                    st.next_due = Some(now_i + Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64));
                    let target = probe::Target { pod_ip: ip, netns: netns.clone(), pid, env: c.env.clone() };
                    let spec = c.spec.clone();
                    let tx = self.probe_tx.clone();
                    let generation = c.generation;
                    tokio::spawn(async move {
                        let ok = probe::run(&p, &spec, &target).await;
                        let _ = tx.send(ProbeResult { init, idx, kind: k, generation, ok });
                    });
                }
            }
        }
    }

    fn probe_result(&mut self, r: ProbeResult) {
        let grace = self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64;
        let pod = self.name.clone();
        let Some(c) = self.ctr(r.init, r.idx) else { return };
        let st = &mut c.probes[r.kind as usize];
        st.in_flight = false;
        if r.generation != c.generation {
            return;
        }
        let Some(p) = c.probe(r.kind).cloned() else { return };
        let st = &mut c.probes[r.kind as usize];
        if r.ok {
            st.successes += 1;
            st.failures = 0;
            if st.successes >= p.success_threshold.unwrap_or(1).max(1) {
                st.ok = Some(true);
            }
        } else {
            st.failures += 1;
            st.successes = 0;
            if st.failures >= p.failure_threshold.unwrap_or(3).max(1) {
                st.ok = Some(false);
            }
        }
        let failed = st.ok == Some(false);
        let mut events: Vec<(bool, &str, String)> = Vec::new();
        if !r.ok {
            events.push((true, "Unhealthy", format!("{:?} probe failed for container {}", r.kind, c.spec.name)));
        }
        if failed
            && matches!(r.kind, Kind::Liveness | Kind::Startup)
            && let Some(pid) = c.pid
        {
            tracing::info!("pod {pod}: container {} failed its {:?} probe; killing it", c.spec.name, r.kind);
            events.push((
                false,
                "Killing",
                format!("Container {} failed {:?} probe, will be restarted", c.spec.name, r.kind),
            ));
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            let g = p.termination_grace_period_seconds.map(|g| g.max(0) as u64).unwrap_or(grace);
            c.kill_deadline = Some(Instant::now() + Duration::from_secs(g));
        }
        c.refresh_ready();
        for (warning, reason, note) in events {
            self.event(warning, reason, note);
        }
    }

    /// Removes the mount points this pod created, innermost first, if they
    /// are still empty (another pod may be using the same path).
    fn remove_created_mount_points(&self) {
        let Ok(mut created) = self.created_mount_points.lock() else { return };
        for p in created.drain(..).rev() {
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir(&p);
                }
                Ok(m) if m.is_file() && m.len() == 0 => {
                    let _ = std::fs::remove_file(&p);
                }
                _ => {}
            }
        }
    }

    /// Runs every running container's `lifecycle.preStop` hook (exec, httpGet,
    /// sleep) concurrently, within the grace period, before SIGTERM.
    async fn run_pre_stop_hooks(&self, deadline: Instant) {
        use k8s_openapi::api::core::v1::Probe;
        let Some(ip) = self.ip else { return };
        let mut hooks = Vec::new();
        for c in self.init.iter().chain(self.main.iter()) {
            let (Some(pid), Some(h)) = (c.pid, c.spec.lifecycle.as_ref().and_then(|l| l.pre_stop.clone())) else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(s) = &h.sleep {
                hooks.push(futures::future::Either::Left(tokio::time::sleep(
                    Duration::from_secs(s.seconds.max(0) as u64).min(left),
                )));
                continue;
            }
            let probe = Probe {
                exec: h.exec.clone(),
                http_get: h.http_get.clone(),
                tcp_socket: h.tcp_socket.clone(),
                timeout_seconds: Some(left.as_secs().max(1) as i32),
                ..Default::default()
            };
            let target = probe::Target { pod_ip: ip, netns: self.netns.clone(), pid, env: c.env.clone() };
            let spec = c.spec.clone();
            hooks.push(futures::future::Either::Right(async move {
                let _ = probe::run(&probe, &spec, &target).await;
            }));
        }
        if hooks.is_empty() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, futures::future::join_all(hooks)).await;
    }

    async fn kill_all(&mut self, grace: Duration) {
        let pids: Vec<i32> = self.init.iter().chain(self.main.iter()).filter_map(|c| c.pid).collect();
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut alive = false;
            for c in self.init.iter_mut().chain(self.main.iter_mut()) {
                if let Some(ch) = c.child.as_mut()
                    && matches!(ch.try_wait(), Ok(None))
                {
                    alive = true;
                }
            }
            if !alive || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        self.reap_final().await;
    }

    async fn reap_final(&mut self) {
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if let Some(mut ch) = c.child.take() {
                let st = ch.wait().await.ok();
                use std::os::unix::process::ExitStatusExt;
                let code = st.and_then(|s| s.code().or(s.signal().map(|x| 128 + x))).unwrap_or(137);
                c.status.state = CState::Terminated {
                    exit_code: code,
                    signal: None,
                    reason: if code == 0 { "Completed".into() } else { "Error".into() },
                    message: None,
                    started_at: c.started_at.take().map(|(_, t)| t),
                    finished_at: now(),
                };
                c.status.ready = false;
                c.pid = None;
            }
        }
    }

    /// SIGTERM, wait out the grace period, SIGKILL, remove the sandbox, then
    /// delete the pod with grace period 0 (when the API asked for it).
    async fn teardown(&mut self, grace: Duration, delete: bool, rx: &mut watch::Receiver<Option<Pod>>) {
        tracing::info!("pod {}/{}: stopping (grace {grace:?})", self.ns, self.name);
        let deadline = Instant::now() + grace;
        if delete {
            for c in self.init.iter().chain(self.main.iter()).filter(|c| c.pid.is_some()) {
                self.event(false, "Killing", format!("Stopping container {}", c.spec.name));
            }
            self.run_pre_stop_hooks(deadline).await;
        }
        let pids: Vec<i32> = self.init.iter().chain(self.main.iter()).filter_map(|c| c.pid).collect();
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        loop {
            let mut alive = false;
            for c in self.init.iter_mut().chain(self.main.iter_mut()) {
                if let Some(ch) = c.child.as_mut()
                    && matches!(ch.try_wait(), Ok(None))
                {
                    alive = true;
                }
            }
            if !alive || Instant::now() >= deadline {
                break;
            }
            // A force deletion (the object is gone) ends the grace period.
            if rx.borrow_and_update().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        self.reap_final().await;
        tokio::task::block_in_place(|| net::delete_netns(&self.netns));
        if let Some(ip) = self.ip.take()
            && !self.ip_released
        {
            self.ctx.release_ip(ip);
            self.ip_released = true;
        }
        let _ = std::fs::remove_dir_all(&self.pod_dir);
        self.remove_created_mount_points();
        if delete && !SHUTTING_DOWN.load(Ordering::SeqCst) {
            let _ = self.publish().await;
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            if let Err(e) = api.delete(&self.name, &dp).await
                && !matches!(&e, kube::Error::Api(ae) if ae.code == 404 || ae.code == 409)
            {
                tracing::warn!("pod {}/{}: final delete: {e}", self.ns, self.name);
            }
        }
        tracing::info!("pod {}/{}: stopped", self.ns, self.name);
    }

    async fn publish(&mut self) {
        let init: Vec<CStatus> = self.init.iter().map(|c| c.status.clone()).collect();
        let main: Vec<CStatus> = self.main.iter().map(|c| c.status.clone()).collect();
        let message = self.volume_error.clone().or(self.sandbox_error.clone());
        let facts = PodFacts {
            restart_policy: &self.restart_policy,
            pod_ip: self.ip.map(|i| i.to_string()),
            host_ip: self.ctx.cfg.node_ip.to_string(),
            start_time: self.start_time.clone(),
            init_done: self.init_done(),
            now: now(),
            previous: &self.prev_conditions,
            message: None,
            reason: None,
        };
        let _ = message;
        let mut status = pod_status(&facts, &init, &main);
        if self.ip.is_none() && self.terminal {
            status.pod_ip = None;
            status.pod_ips = None;
        }
        let Ok(value) = serde_json::to_value(&status) else { return };
        if self.last_published.as_ref() == Some(&value) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(serde_json::json!({ "status": value })))
            .await
        {
            Ok(_) => {
                self.prev_conditions = status.conditions.unwrap_or_default();
                self.last_published = Some(value);
            }
            Err(e) => {
                if !matches!(&e, kube::Error::Api(ae) if ae.code == 404) {
                    tracing::warn!("pod {}/{}: status update: {e}", self.ns, self.name);
                }
            }
        }
    }
}

/// The tail of the newest `<n>.log` in a container's log directory.
fn log_tail(dir: &std::path::Path) -> Option<String> {
    let mut tail = crate::process::tail(&super::kubelet::run_log(dir, false)?, 80);
    if tail.len() > 2048 {
        let mut cut = tail.len() - 2048;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    let tail = tail.trim().to_string();
    (!tail.is_empty()).then_some(tail)
}
