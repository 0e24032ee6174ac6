//! Turning a container spec into a process: the image map (ENTRYPOINT/CMD),
//! Kubernetes env semantics, and the namespaces the process runs in.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};
use kube::{Api, ResourceExt};

use super::config::NodeConfig;
use super::dns::Directory;
use super::expand::expand;

/// Why a container cannot be started; the variant gives the waiting reason.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    ErrImagePull(String),
    #[error("{0}")]
    CreateContainerConfigError(String),
    #[error("{0}")]
    CreateContainerError(String),
}

impl StartError {
    pub fn reason(&self) -> &'static str {
        match self {
            StartError::ErrImagePull(_) => "ErrImagePull",
            StartError::CreateContainerConfigError(_) => "CreateContainerConfigError",
            StartError::CreateContainerError(_) => "CreateContainerError",
        }
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn search(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let host_path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    dirs.iter().cloned().chain(std::env::split_paths(&host_path)).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A container's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub argv: Vec<String>,
    /// `argv[0]` is the image's program: its ENTRYPOINT or CMD, or a bare name that
    /// the agent looked up in the image's dirs or the host PATH. Its path is where
    /// this machine keeps the image's file, not a path the container chose, so the
    /// container's volumes must not hide it (see `open_program`).
    pub from_image: bool,
}

/// argv for a container: image ENTRYPOINT/CMD overridden by `command`/`args`,
/// as Kubernetes does, after `$(VAR)` expansion.
pub fn argv(cfg: &NodeConfig, c: &Container, env: &[(String, String)]) -> Result<CommandLine, StartError> {
    let image = c.image.clone().unwrap_or_default();
    let m = cfg.image(&image).ok_or_else(|| {
        StartError::ErrImagePull(format!(
            "image {image:?} is not mapped to a local program in the sluice-node config (images:)"
        ))
    })?;
    let lookup = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let command: Vec<String> = c.command.iter().flatten().map(|s| expand(s, &lookup)).collect();
    let args: Vec<String> = c.args.iter().flatten().map(|s| expand(s, &lookup)).collect();
    // Without an ENTRYPOINT, `args` replace CMD and their first word is the program.
    let image_first = command.is_empty() && (!m.entrypoint.is_empty() || (args.is_empty() && c.args.is_none()));
    let mut argv = if command.is_empty() {
        let mut a = m.entrypoint.clone();
        a.extend(if args.is_empty() && c.args.is_none() { m.cmd.clone() } else { args });
        a
    } else {
        let mut a = command;
        a.extend(args);
        a
    };
    let Some(first) = argv.first().cloned() else {
        return Err(StartError::CreateContainerError(format!(
            "image {image:?} has no entrypoint and the container has no command"
        )));
    };
    let looked_up = !first.contains('/');
    if looked_up {
        let mut dirs = m.path.clone();
        if let Some(ep) = m.entrypoint.first()
            && let Some(d) = Path::new(ep).parent()
        {
            dirs.push(d.to_path_buf());
        }
        let found = search(&first, &dirs).ok_or_else(|| {
            StartError::CreateContainerError(format!("executable {first:?} not found in the image path or PATH"))
        })?;
        argv[0] = found.display().to_string();
    }
    if !Path::new(&argv[0]).exists() {
        return Err(StartError::CreateContainerError(format!("executable {:?} does not exist", argv[0])));
    }
    Ok(CommandLine { argv, from_image: image_first || looked_up })
}

fn field_ref(pod: &Pod, path: &str, host_ip: &str, pod_ip: &str) -> Option<String> {
    let md = &pod.metadata;
    Some(match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => md.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod.spec.as_ref()?.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => pod.spec.as_ref()?.service_account_name.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        p if p.starts_with("metadata.labels['") => {
            let k = p.strip_prefix("metadata.labels['")?.strip_suffix("']")?;
            pod.labels().get(k).cloned().unwrap_or_default()
        }
        p if p.starts_with("metadata.annotations['") => {
            let k = p.strip_prefix("metadata.annotations['")?.strip_suffix("']")?;
            pod.annotations().get(k).cloned().unwrap_or_default()
        }
        "metadata.labels" => pod.labels().iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join("\n"),
        "metadata.annotations" => {
            pod.annotations().iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join("\n")
        }
        _ => return None,
    })
}

pub(crate) fn resolve_field(pod: &Pod, path: &str, host_ip: &str, pod_ip: &str) -> Option<String> {
    field_ref(pod, path, host_ip, pod_ip)
}

fn env_name(svc: &str) -> String {
    svc.to_ascii_uppercase().replace('-', "_")
}

/// Service environment variables. There is no kube-proxy, so `*_SERVICE_HOST`
/// is the first ready endpoint's address and `*_SERVICE_PORT` its target port.
fn service_env(dir: &Directory, ns: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut services: Vec<_> =
        dir.services.state().into_iter().filter(|s| s.namespace().as_deref() == Some(ns)).collect();
    let default_ns = "default";
    if ns != default_ns
        && let Some(k) = dir.service(default_ns, "kubernetes")
    {
        services.push(k);
    }
    services.sort_by_key(|s| s.name_any());
    for s in services {
        let (eps, ports) = dir.endpoints(s.namespace().as_deref().unwrap_or(ns), &s.name_any());
        let (Some(ep), Some((_, port))) = (eps.first(), ports.first()) else {
            continue;
        };
        let n = env_name(&s.name_any());
        out.push((format!("{n}_SERVICE_HOST"), ep.ip.to_string()));
        out.push((format!("{n}_SERVICE_PORT"), port.to_string()));
        for (pname, p) in &ports {
            if !pname.is_empty() {
                out.push((format!("{n}_SERVICE_PORT_{}", env_name(pname)), p.to_string()));
            }
            out.push((format!("{n}_PORT_{p}_TCP"), format!("tcp://{}:{p}", ep.ip)));
            out.push((format!("{n}_PORT_{p}_TCP_PROTO"), "tcp".into()));
            out.push((format!("{n}_PORT_{p}_TCP_PORT"), p.to_string()));
            out.push((format!("{n}_PORT_{p}_TCP_ADDR"), ep.ip.to_string()));
        }
        out.push((format!("{n}_PORT"), format!("tcp://{}:{port}", ep.ip)));
    }
    out
}

fn push(env: &mut Vec<(String, String)>, k: String, v: String) {
    env.retain(|(n, _)| *n != k);
    env.push((k, v));
}

/// The container's environment, in Kubernetes order: defaults, service
/// variables, `envFrom`, then `env` (each `$(VAR)`-expanded against what
/// precedes it).
pub async fn environment(
    client: &kube::Client,
    dir: &Directory,
    pod: &Pod,
    c: &Container,
    host_ip: &str,
    pod_ip: &str,
) -> Result<Vec<(String, String)>, StartError> {
    let ns = pod.namespace().unwrap_or_default();
    let cfg_err = StartError::CreateContainerConfigError;
    let mut env: Vec<(String, String)> =
        vec![("PATH".into(), DEFAULT_PATH.into()), ("HOSTNAME".into(), hostname(pod)), ("HOME".into(), "/root".into())];
    if pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true) {
        for (k, v) in service_env(dir, &ns) {
            push(&mut env, k, v);
        }
    } else if let Some(k) = dir.service("default", "kubernetes") {
        let _ = k;
        for (k, v) in service_env(dir, "default").into_iter().filter(|(k, _)| k.starts_with("KUBERNETES_")) {
            push(&mut env, k, v);
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for ef in c.env_from.iter().flatten() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        if let Some(r) = &ef.config_map_ref {
            match cms.get_opt(&r.name).await {
                Ok(Some(cm)) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        push(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                Ok(None) if r.optional == Some(true) => {}
                Ok(None) => return Err(cfg_err(format!("configmap \"{}\" not found", r.name))),
                Err(e) => return Err(cfg_err(format!("configmap {}: {e}", r.name))),
            }
        }
        if let Some(r) = &ef.secret_ref {
            match secrets.get_opt(&r.name).await {
                Ok(Some(s)) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        push(&mut env, format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned());
                    }
                }
                Ok(None) if r.optional == Some(true) => {}
                Ok(None) => return Err(cfg_err(format!("secret \"{}\" not found", r.name))),
                Err(e) => return Err(cfg_err(format!("secret {}: {e}", r.name))),
            }
        }
    }
    for EnvVar { name, value, value_from } in c.env.iter().flatten() {
        let v = if let Some(v) = value {
            let snapshot = env.clone();
            let lookup = |k: &str| snapshot.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            expand(v, &lookup)
        } else if let Some(vf) = value_from {
            if let Some(f) = &vf.field_ref {
                field_ref(pod, &f.field_path, host_ip, pod_ip)
                    .ok_or_else(|| cfg_err(format!("unsupported fieldRef {}", f.field_path)))?
            } else if let Some(s) = &vf.secret_key_ref {
                match secrets.get_opt(&s.name).await {
                    Ok(Some(sec)) => match sec.data.unwrap_or_default().get(&s.key) {
                        Some(b) => String::from_utf8_lossy(&b.0).into_owned(),
                        None if s.optional == Some(true) => continue,
                        None => {
                            return Err(cfg_err(format!("couldn't find key {} in Secret {}/{}", s.key, ns, s.name)));
                        }
                    },
                    Ok(None) if s.optional == Some(true) => continue,
                    Ok(None) => return Err(cfg_err(format!("secret \"{}\" not found", s.name))),
                    Err(e) => return Err(cfg_err(format!("secret {}: {e}", s.name))),
                }
            } else if let Some(s) = &vf.config_map_key_ref {
                match cms.get_opt(&s.name).await {
                    Ok(Some(cm)) => match cm.data.unwrap_or_default().get(&s.key) {
                        Some(b) => b.clone(),
                        None if s.optional == Some(true) => continue,
                        None => {
                            return Err(cfg_err(format!("couldn't find key {} in ConfigMap {}/{}", s.key, ns, s.name)));
                        }
                    },
                    Ok(None) if s.optional == Some(true) => continue,
                    Ok(None) => return Err(cfg_err(format!("configmap \"{}\" not found", s.name))),
                    Err(e) => return Err(cfg_err(format!("configmap {}: {e}", s.name))),
                }
            } else if let Some(r) = &vf.resource_field_ref {
                // No cgroups: report the declared limit (or the node's capacity).
                let _ = r;
                "0".to_string()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        push(&mut env, name.clone(), v);
    }
    Ok(env)
}

/// The pod's hostname (`spec.hostname` or its name, as the kubelet does).
pub fn hostname(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_else(|| pod.name_any()).chars().take(63).collect()
}

/// A bind mount made inside the container's mount namespace.
#[derive(Debug, Clone)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything the pre-exec hook needs, prepared before fork so that the
/// child only makes system calls (no allocation after fork).
pub struct Launch {
    pub argv: Vec<String>,
    /// See [`CommandLine::from_image`].
    pub from_image: bool,
    pub env: Vec<(String, String)>,
    pub netns: OwnedFd,
    /// Join this mount namespace instead of making a new one (exec probes).
    pub join_mnt: Option<OwnedFd>,
    pub mounts: Vec<Mount>,
    pub hostname: String,
    pub workdir: PathBuf,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub supplementary: Vec<u32>,
    pub log: Option<PathBuf>,
}

struct Prepared {
    /// (a detached clone of the source's mount tree, target, read-only).
    mounts: Vec<(OwnedFd, CString, bool)>,
    hostname: CString,
    workdir: CString,
    uid: Option<nix::unistd::Uid>,
    gid: Option<nix::unistd::Gid>,
    groups: Vec<nix::unistd::Gid>,
    netns: OwnedFd,
    join_mnt: Option<OwnedFd>,
}

fn cstr(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|e| anyhow!("path {}: {e}", p.display()))
}

/// Spawns the process. It gets its own session (so its process group can be
/// signalled), joins the pod's network namespace, gets a private mount and
/// UTS namespace with the volumes bind-mounted, then drops to runAsUser.
pub fn spawn(l: Launch) -> Result<tokio::process::Child> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, setns, unshare};

    for m in &l.mounts {
        // The host filesystem is the image: create missing mount points.
        if !m.target.exists() {
            if m.source.is_dir() {
                std::fs::create_dir_all(&m.target)
                    .with_context(|| format!("creating mount point {}", m.target.display()))?;
            } else {
                if let Some(p) = m.target.parent() {
                    std::fs::create_dir_all(p)?;
                }
                std::fs::write(&m.target, b"")?;
            }
        }
    }
    let prepared = Prepared {
        mounts: l
            .mounts
            .iter()
            .map(|m| Ok((clone_tree(&m.source)?, cstr(&m.target)?, m.read_only)))
            .collect::<Result<_>>()?,
        hostname: CString::new(l.hostname.clone())?,
        workdir: cstr(&l.workdir)?,
        uid: l.uid.map(nix::unistd::Uid::from_raw),
        gid: l.gid.or(l.uid.map(|_| 0)).map(nix::unistd::Gid::from_raw),
        groups: l.supplementary.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect(),
        netns: l.netns,
        join_mnt: l.join_mnt,
    };
    let Some((prog, args)) = l.argv.split_first() else {
        bail!("empty argv");
    };
    // Opened here, in the agent's (the host's) mount namespace, before the child
    // mounts any volume; held open until the child has exec'd it.
    let exe = open_program(prog, l.from_image, &l.mounts);
    let mut cmd = match &exe {
        Some(p) => {
            let mut c = tokio::process::Command::new(format!("/proc/self/fd/{}", p.file.as_raw_fd()));
            c.arg0(prog);
            c
        }
        None => tokio::process::Command::new(prog),
    };
    // A script's interpreter opens the script by the name the kernel hands it,
    // `/proc/self/fd/N`, after the exec: the descriptor must survive the exec in this
    // child only (std opens files close-on-exec, so that other children forked by
    // the agent meanwhile do not inherit it).
    let inherit_fd = exe.as_ref().filter(|p| p.script).map(|p| p.file.as_raw_fd());
    cmd.args(args).env_clear().envs(l.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(std::process::Stdio::null());
    cmd.kill_on_drop(l.log.is_none());
    match &l.log {
        Some(log) => {
            if let Some(p) = log.parent() {
                std::fs::create_dir_all(p)?;
            }
            let f = std::fs::File::options().create(true).append(true).open(log)?;
            cmd.stdout(f.try_clone()?).stderr(f);
        }
        None => {
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        }
    }
    let hostname_os = std::ffi::OsString::from(l.hostname);
    // SAFETY: the closure only makes system calls on data prepared above.
    unsafe {
        cmd.pre_exec(move || {
            let io = std::io::Error::from;
            nix::unistd::setsid().map_err(io)?;
            setns(&prepared.netns, CloneFlags::CLONE_NEWNET).map_err(io)?;
            if let Some(mnt) = &prepared.join_mnt {
                setns(mnt, CloneFlags::CLONE_NEWNS).map_err(io)?;
            } else {
                unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(io)?;
                mount(
                    None::<&std::ffi::CStr>,
                    c"/",
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&std::ffi::CStr>,
                )
                .map_err(io)?;
                for (tree, dst, ro) in &prepared.mounts {
                    // move_mount(2) with a valid descriptor and NUL-terminated paths.
                    let r = libc::syscall(
                        libc::SYS_move_mount,
                        tree.as_raw_fd(),
                        c"".as_ptr(),
                        libc::AT_FDCWD,
                        dst.as_ptr(),
                        MOVE_MOUNT_F_EMPTY_PATH,
                    );
                    if r < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if *ro {
                        mount(
                            None::<&std::ffi::CStr>,
                            dst.as_c_str(),
                            None::<&std::ffi::CStr>,
                            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                            None::<&std::ffi::CStr>,
                        )
                        .map_err(io)?;
                    }
                }
                nix::unistd::sethostname(&hostname_os).map_err(io)?;
            }
            let _ = &prepared.hostname;
            if let Some(gid) = prepared.gid {
                nix::unistd::setgroups(&prepared.groups).map_err(io)?;
                nix::unistd::setgid(gid).map_err(io)?;
            }
            if let Some(uid) = prepared.uid {
                nix::unistd::setuid(uid).map_err(io)?;
            }
            nix::unistd::chdir(prepared.workdir.as_c_str()).map_err(io)?;
            if let Some(fd) = inherit_fd
                && libc::fcntl(fd, libc::F_SETFD, 0) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting {prog}"))?;
    drop(exe);
    Ok(child)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// A detached recursive bind mount of `source` (open_tree(2) with OPEN_TREE_CLONE),
/// which the child attaches at the volume's target with move_mount(2). Sources are
/// resolved here, in the host's view, as a runtime prepares them: a volume mounted
/// earlier in the container (an emptyDir at `/tmp`) cannot hide a later volume's
/// source below it, as a path looked up inside the container would be.
fn clone_tree(source: &Path) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let path = cstr(source)?;
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree(2) with a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cloning volume source {}", source.display()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A program opened by the agent, which the child execs through its descriptor.
struct OpenProgram {
    file: std::fs::File,
    /// A `#!` script rather than an ELF binary.
    script: bool,
}

/// Opens the program in the agent's view of the filesystem, before the child
/// mounts the container's volumes, so that the child can exec it through its
/// descriptor (`/proc/self/fd/N`) as a container runtime execs an image's
/// entrypoint: the container's user (`runAsUser`) then needs execute permission
/// on the file only, not on the host directories above it (such as `/root`).
///
/// The image's program ([`CommandLine::from_image`]) is always opened this way,
/// even below a volume's mount point. Its path is where this machine keeps the
/// image's file (`target/debug` of a clone under `/tmp`, where the engine pods
/// mount an emptyDir), whereas a real image has it at a path of its own that the
/// pod's volumes do not cover. A path that the container's `command` names below
/// a volume is left to the container's view, where it is a file of that volume.
/// The kernel still resolves the ELF interpreter, and `ld.so` the shared
/// libraries, in the container's view, after the volumes: `/lib` and `/usr` are
/// not mounted over.
///
/// A script is exec'd through its descriptor only when a volume covers its path:
/// its interpreter then gets `/proc/self/fd/N` as the script's name (`$0`), which
/// breaks scripts that find their siblings through `$0`; by path it keeps it.
fn open_program(prog: &str, from_image: bool, mounts: &[Mount]) -> Option<OpenProgram> {
    use std::io::Read;
    let path = Path::new(prog);
    let covered = mounts.iter().any(|m| path.starts_with(&m.target));
    if !path.is_absolute() || (covered && !from_image) {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).ok()?;
    if n == magic.len() && magic == *b"\x7fELF" {
        Some(OpenProgram { file, script: false })
    } else if covered && magic[..n].starts_with(b"#!") {
        Some(OpenProgram { file, script: true })
    } else {
        None
    }
}

pub fn open_netns(name: &str) -> Result<OwnedFd> {
    let f = std::fs::File::open(Path::new("/run/netns").join(name)).with_context(|| format!("opening netns {name}"))?;
    Ok(OwnedFd::from(f))
}

pub fn open_mntns(pid: i32) -> Result<OwnedFd> {
    let f = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    let _ = f.as_raw_fd();
    Ok(OwnedFd::from(f))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_program_comes_from_the_image_unless_the_container_names_its_path() {
        let cfg: NodeConfig = serde_yaml::from_str(
            "{nodeName: n, kubeconfig: k, bridge: b, nodeIp: 10.0.0.1, stateDir: s, images: [
               {image: 'eng:*', entrypoint: [/bin/true]},
               {image: 'shell:*', cmd: [/bin/sh]}]}",
        )
        .unwrap();
        // (image, command, args) → (argv, from_image); `None` for an absent field.
        type Case<'a> = (&'a str, Option<&'a [&'a str]>, Option<&'a [&'a str]>, &'a [&'a str], bool);
        let cases: &[Case] = &[
            ("eng:1", None, None, &["/bin/true"], true),
            ("eng:1", None, Some(&["--x"]), &["/bin/true", "--x"], true),
            ("eng:1", Some(&["/bin/sh", "-c", "x"]), None, &["/bin/sh", "-c", "x"], false),
            ("shell:1", None, None, &["/bin/sh"], true),
            // Without an ENTRYPOINT, args replace CMD: their first word is the container's.
            ("shell:1", None, Some(&["/bin/true", "y"]), &["/bin/true", "y"], false),
        ];
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (image, command, args, want, from_image) in cases {
            let c = Container {
                name: "c".into(),
                image: Some(image.to_string()),
                command: command.map(strings),
                args: args.map(strings),
                ..Default::default()
            };
            let got = argv(&cfg, &c, &[]).unwrap();
            assert_eq!(
                got,
                CommandLine { argv: strings(want), from_image: *from_image },
                "{image} {command:?} {args:?}"
            );
        }
        // A bare name is looked up by the agent, in the image's dirs or the host PATH.
        let c = Container {
            name: "c".into(),
            image: Some("eng:1".into()),
            command: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let got = argv(&cfg, &c, &[]).unwrap();
        assert!(got.from_image && got.argv[0].ends_with("/sh"), "{got:?}");
    }
}
