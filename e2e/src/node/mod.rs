//! `sluice-node`: a node agent that runs pods' containers as local processes.
//!
//! It registers a Node (Ready, with allocatable CPU and memory) and renews
//! its Lease, watches the pods bound to it, and gives each pod a network
//! namespace on the cluster bridge, a mount namespace per container with the
//! volumes bind-mounted, and a DNS server on the node's bridge address.
//! When it stops it kills its processes and removes its namespaces.

pub mod config;
pub mod container;
pub mod dns;
pub mod expand;
pub mod kubelet;
pub mod pod;
pub mod probe;
pub mod registration;
pub mod status;
pub mod volumes;

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

pub use config::NodeConfig;

use crate::net;

/// Shared by all pod workers.
pub struct Ctx {
    pub cfg: NodeConfig,
    pub client: kube::Client,
    /// Pod events (Started, Killing, BackOff, Unhealthy, FailedMount, Failed), as the kubelet emits them.
    pub recorder: kube::runtime::events::Recorder,
    pub dir: dns::Directory,
    ips: Mutex<BTreeSet<u8>>,
    next_ip: Mutex<u8>,
}

impl Ctx {
    /// Allocates a free pod address in the node's /24 (`.2`–`.254`).
    pub fn alloc_ip(&self) -> Option<Ipv4Addr> {
        let o = self.cfg.node_ip.octets();
        let mut used = self.ips.lock().ok()?;
        // Round-robin, not lowest-free: a pod recreated at once must not get
        // the address whose old MAC its peers still have in their ARP caches.
        let mut next = self.next_ip.lock().ok()?;
        let host = (0..253u16).map(|i| (2 + (u16::from(*next) - 2 + i) % 253) as u8).find(|h| !used.contains(h))?;
        *next = if host == 254 { 2 } else { host + 1 };
        used.insert(host);
        Some(Ipv4Addr::new(o[0], o[1], o[2], host))
    }

    pub fn release_ip(&self, ip: Ipv4Addr) {
        if let Ok(mut used) = self.ips.lock() {
            used.remove(&ip.octets()[3]);
        }
    }

    /// Prefix of the network namespaces this node owns.
    pub fn netns_prefix(&self) -> String {
        format!("sluice-{}-", self.cfg.node_name)
    }
}

/// Removes what a previous run of this node may have left behind.
pub fn cleanup_leftovers(cfg: &NodeConfig) {
    let prefix = format!("sluice-{}-", cfg.node_name);
    for ns in net::list_netns(&prefix) {
        tracing::info!("removing leftover netns {ns}");
        net::delete_netns(&ns);
    }
}

/// Runs the agent until `shutdown` resolves, then stops every pod (SIGTERM,
/// a short grace, SIGKILL) and removes its namespaces and bridge address.
pub async fn run(cfg: NodeConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let client = crate::client_from_kubeconfig(&cfg.kubeconfig).await?;
    cleanup_leftovers(&cfg);
    std::fs::create_dir_all(&cfg.state_dir)?;
    net::ensure_bridge(&cfg.bridge, cfg.node_ip, cfg.prefix)?;

    // Services and EndpointSlices, for DNS and service env vars.
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let svc_task = tokio::spawn(
        reflector(svc_writer, watcher(Api::<Service>::all(client.clone()), watcher::Config::default()))
            .default_backoff()
            .touched_objects()
            .for_each(|_| futures::future::ready(())),
    );
    let eps_task = tokio::spawn(
        reflector(eps_writer, watcher(Api::<EndpointSlice>::all(client.clone()), watcher::Config::default()))
            .default_backoff()
            .touched_objects()
            .for_each(|_| futures::future::ready(())),
    );
    let directory =
        dns::Directory { services: svc_store.clone(), slices: eps_store.clone(), domain: cfg.cluster_domain.clone() };
    let dns_addr = SocketAddr::new(cfg.node_ip.into(), 53);
    let dns_sock_dir = directory.clone();
    // DNS gets a thread of its own: pods' lookups must not wait behind pod
    // workers that block on `ip` or on the API server.
    let (dns_stop_tx, dns_stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name("dns".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            tokio::select! {
                r = dns::serve(dns_addr, dns_sock_dir) => if let Err(e) = r {
                    tracing::error!("dns server on {dns_addr}: {e:#}");
                },
                _ = dns_stop_rx => {}
            }
        });
    })?;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let _ = svc_store.wait_until_ready().await;
        let _ = eps_store.wait_until_ready().await;
    })
    .await;

    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        client: client.clone(),
        recorder: kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter { controller: "kubelet".into(), instance: Some(cfg.node_name.clone()) },
        ),
        dir: directory,
        ips: Mutex::new(BTreeSet::new()),
        next_ip: Mutex::new(2),
    });

    registration::register(&ctx).await.context("registering the node")?;
    let hb_ctx = ctx.clone();
    let heartbeat = tokio::spawn(async move { registration::heartbeat_loop(hb_ctx).await });
    let kubelet_ctx = ctx.clone();
    let kubelet_task = tokio::spawn(async move {
        if let Err(e) = kubelet::serve(kubelet_ctx).await {
            tracing::error!("kubelet API: {e:#}");
        }
    });

    let pods: Api<Pod> = Api::all(client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.node_name));
    let mut stream = watcher(pods, wc).default_backoff().boxed();
    let mut workers: HashMap<String, (watch::Sender<Option<Pod>>, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut seen_in_init: BTreeSet<String> = BTreeSet::new();
    tracing::info!("node {} ready; pods on {}", cfg.node_name, cfg.node_ip);

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let ev = tokio::select! {
            _ = &mut shutdown => break,
            ev = stream.try_next() => ev,
        };
        let ev = match ev {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("pod watch: {e}");
                continue;
            }
        };
        match ev {
            watcher::Event::Init => seen_in_init.clear(),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                let Some(uid) = p.uid() else { continue };
                seen_in_init.insert(uid.clone());
                workers.retain(|_, (_, h)| !h.is_finished());
                if let Some((tx, _)) = workers.get(&uid) {
                    let _ = tx.send(Some(p));
                } else {
                    let (tx, rx) = watch::channel(Some(p));
                    let c = ctx.clone();
                    let h = tokio::spawn(async move { pod::PodWorker::run(c, rx).await });
                    workers.insert(uid, (tx, h));
                }
            }
            watcher::Event::InitDone => {
                for (uid, (tx, _)) in workers.iter() {
                    if !seen_in_init.contains(uid) {
                        let _ = tx.send(None);
                    }
                }
            }
            watcher::Event::Delete(p) => {
                if let Some(uid) = p.uid()
                    && let Some((tx, _)) = workers.get(&uid)
                {
                    let _ = tx.send(None);
                }
            }
        }
    }

    tracing::info!("node {} stopping: killing {} pods", cfg.node_name, workers.len());
    pod::SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    for (_, (tx, _)) in workers.iter() {
        let _ = tx.send(None);
    }
    for (_, (_, h)) in workers.drain() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(15), h).await;
    }
    heartbeat.abort();
    let _ = dns_stop_tx.send(());
    kubelet_task.abort();
    svc_task.abort();
    eps_task.abort();
    cleanup_leftovers(&cfg);
    net::remove_addr(&cfg.bridge, cfg.node_ip, cfg.prefix);
    let _ = std::fs::remove_dir_all(cfg.state_dir.join("pods"));
    Ok(())
}

pub fn pod_key(p: &Pod) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}
