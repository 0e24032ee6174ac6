//! Volumes, materialised as directories under the pod's directory and
//! bind-mounted over their container paths: emptyDir, configMap, secret,
//! downwardAPI, projected (service-account token + CA + namespace) and hostPath.
//!
//! ConfigMap, Secret, downwardAPI and projected contents are written as the
//! kubelet's AtomicWriter does: the files live in a timestamped `..<n>`
//! directory, `..data` is a symlink to it and each top-level entry is a
//! symlink through `..data`. An update writes a new directory and swaps the
//! `..data` link in one rename, so a container (whose bind mount is the
//! volume directory) sees either all old or all new contents. The pod worker
//! refreshes them periodically, as the kubelet does; `subPath` mounts keep
//! what they had, as in Kubernetes.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::container::resolve_field;

/// Volume contents: relative path → (bytes, mode).
type Files = BTreeMap<String, (Vec<u8>, u32)>;

fn put(files: &mut Files, rel: &str, data: &[u8], mode: i32) -> Result<()> {
    if rel.split('/').any(|c| c == ".." || c.is_empty()) || rel.starts_with('/') || rel.starts_with("..") {
        bail!("invalid volume path {rel:?}");
    }
    files.insert(rel.to_string(), (data.to_vec(), mode as u32 & 0o777));
    Ok(())
}

fn put_items(
    files: &mut Files,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: i32,
    what: &str,
    optional: bool,
) -> Result<()> {
    match items {
        Some(items) => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => put(files, &it.path, v, it.mode.unwrap_or(default_mode))?,
                    None if optional => {}
                    None => bail!("{what}: key {:?} not found", it.key),
                }
            }
        }
        None => {
            for (k, v) in data {
                put(files, k, v, default_mode)?;
            }
        }
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

/// Makes `dir` hold exactly `files`, atomically (see the module docs).
/// Returns whether anything changed.
fn atomic_write(dir: &Path, files: &Files) -> Result<bool> {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    let current = std::fs::read_link(&data_link).ok();
    if let Some(cur) = &current {
        let cur_dir = dir.join(cur);
        let same = count_files(&cur_dir) == files.len()
            && files.iter().all(|(rel, (d, _))| std::fs::read(cur_dir.join(rel)).ok().as_deref() == Some(d.as_slice()));
        if same {
            return Ok(false);
        }
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let ts = format!("..{nanos}");
    let new_dir = dir.join(&ts);
    std::fs::create_dir_all(&new_dir)?;
    for (rel, (data, mode)) in files {
        let p = new_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    std::fs::set_permissions(&new_dir, std::fs::Permissions::from_mode(0o755))?;
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, &data_link)?;
    let tops: std::collections::BTreeSet<&str> = files.keys().filter_map(|k| k.split('/').next()).collect();
    for t in &tops {
        let l = dir.join(t);
        if std::fs::symlink_metadata(&l).is_err() {
            symlink(format!("..data/{t}"), &l)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("..") && !tops.contains(name.as_str()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(cur) = current
        && cur != Path::new(&ts)
    {
        let _ = std::fs::remove_dir_all(dir.join(cur));
    }
    Ok(true)
}

async fn configmap_data(api: &Api<ConfigMap>, name: &str, optional: bool) -> Result<BTreeMap<String, Vec<u8>>> {
    match api.get_opt(name).await? {
        Some(cm) => {
            let mut m: BTreeMap<String, Vec<u8>> =
                cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
            for (k, v) in cm.binary_data.unwrap_or_default() {
                m.insert(k, v.0);
            }
            Ok(m)
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(anyhow!("configmap \"{name}\" not found")),
    }
}

async fn secret_data(api: &Api<Secret>, name: &str, optional: bool) -> Result<BTreeMap<String, Vec<u8>>> {
    match api.get_opt(name).await? {
        Some(s) => {
            let mut m: BTreeMap<String, Vec<u8>> =
                s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                m.insert(k, v.into_bytes());
            }
            Ok(m)
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(anyhow!("secret \"{name}\" not found")),
    }
}

fn downward(
    files: &mut Files,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: i32,
    host_ip: &str,
    pod_ip: &str,
) -> Result<()> {
    for it in items {
        let v = if let Some(f) = &it.field_ref {
            resolve_field(pod, &f.field_path, host_ip, pod_ip)
                .ok_or_else(|| anyhow!("unsupported fieldRef {}", f.field_path))?
        } else {
            String::new()
        };
        put(files, &it.path, v.as_bytes(), it.mode.unwrap_or(mode))?;
    }
    Ok(())
}

/// Materialises every volume of `pod` under `pod_dir/volumes`, returning
/// each volume's host path. An error names the volume and what is missing;
/// the caller retries (the kubelet's FailedMount). With `refresh`, contents
/// are brought up to date in place and service-account tokens are kept.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
    host_ip: &str,
    pod_ip: &str,
    refresh: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    let ns = pod.namespace().unwrap_or_default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut out = BTreeMap::new();
    let vols: Vec<Volume> = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    for v in vols {
        let dir = pod_dir.join("volumes").join(&v.name);
        let ctx = || format!("volume {:?}", v.name);
        if let Some(hp) = &v.host_path {
            let p = PathBuf::from(&hp.path);
            match hp.type_.as_deref() {
                Some("DirectoryOrCreate") => std::fs::create_dir_all(&p)?,
                Some("FileOrCreate") if !p.exists() => std::fs::write(&p, b"")?,
                _ if !p.exists() => bail!("{}: hostPath {} does not exist", ctx(), hp.path),
                _ => {}
            }
            out.insert(v.name.clone(), p);
            continue;
        }
        std::fs::create_dir_all(&dir)?;
        let mut files = Files::new();
        if v.empty_dir.is_some() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
            out.insert(v.name.clone(), dir);
            continue;
        } else if let Some(cm) = &v.config_map {
            let data = configmap_data(&cms, &cm.name, cm.optional == Some(true)).await.with_context(ctx)?;
            put_items(
                &mut files,
                &data,
                cm.items.as_ref(),
                cm.default_mode.unwrap_or(0o644),
                &cm.name,
                cm.optional == Some(true),
            )
            .with_context(ctx)?;
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let data = secret_data(&secrets, &name, s.optional == Some(true)).await.with_context(ctx)?;
            put_items(
                &mut files,
                &data,
                s.items.as_ref(),
                s.default_mode.unwrap_or(0o644),
                &name,
                s.optional == Some(true),
            )
            .with_context(ctx)?;
        } else if let Some(d) = &v.downward_api {
            downward(
                &mut files,
                pod,
                d.items.as_deref().unwrap_or_default(),
                d.default_mode.unwrap_or(0o644),
                host_ip,
                pod_ip,
            )
            .with_context(ctx)?;
        } else if let Some(p) = &v.projected {
            let mode = p.default_mode.unwrap_or(0o644);
            for src in p.sources.iter().flatten() {
                if let Some(t) = &src.service_account_token {
                    // Tokens are requested once (the API server extends them to a year).
                    let existing = if refresh { std::fs::read(dir.join("..data").join(&t.path)).ok() } else { None };
                    let token = match existing {
                        Some(tok) => tok,
                        None => {
                            let sa = pod
                                .spec
                                .as_ref()
                                .and_then(|s| s.service_account_name.clone())
                                .unwrap_or_else(|| "default".into());
                            request_token(client, &ns, &sa, pod, t.audience.clone(), t.expiration_seconds)
                                .await
                                .with_context(ctx)?
                                .into_bytes()
                        }
                    };
                    put(&mut files, &t.path, &token, mode)?;
                }
                if let Some(cm) = &src.config_map {
                    let data = configmap_data(&cms, &cm.name, cm.optional == Some(true)).await.with_context(ctx)?;
                    put_items(&mut files, &data, cm.items.as_ref(), mode, &cm.name, cm.optional == Some(true))?;
                }
                if let Some(s) = &src.secret {
                    let data = secret_data(&secrets, &s.name, s.optional == Some(true)).await.with_context(ctx)?;
                    put_items(&mut files, &data, s.items.as_ref(), mode, &s.name, s.optional == Some(true))?;
                }
                if let Some(d) = &src.downward_api {
                    downward(&mut files, pod, d.items.as_deref().unwrap_or_default(), mode, host_ip, pod_ip)?;
                }
            }
        } else {
            bail!(
                "{}: unsupported volume type (sluice-node supports emptyDir, configMap, secret, downwardAPI, projected, hostPath)",
                ctx()
            );
        }
        atomic_write(&dir, &files).with_context(ctx)?;
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

async fn request_token(
    client: &kube::Client,
    ns: &str,
    sa: &str,
    pod: &Pod,
    audience: Option<String>,
    expiration: Option<i64>,
) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: Some(expiration.unwrap_or(3607)),
            bound_object_ref: Some(k8s_openapi::api::authentication::v1::BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name_any()),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let resp = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .with_context(|| format!("requesting a token for serviceaccount {ns}/{sa}"))?;
    resp.status.map(|s| s.token).ok_or_else(|| anyhow!("token request for {ns}/{sa} returned no token"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_swaps_contents_and_drops_removed_keys() {
        let dir = std::env::temp_dir().join(format!("sluice-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut files = Files::new();
        files.insert("a".into(), (b"1".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"2".to_vec(), 0o600));
        assert!(atomic_write(&dir, &files).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        assert!(!atomic_write(&dir, &files).unwrap(), "unchanged contents are not rewritten");

        files.remove("sub/b");
        files.insert("a".into(), (b"one".to_vec(), 0o644));
        assert!(atomic_write(&dir, &files).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one");
        assert!(!dir.join("sub").exists());
        let hidden: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".."))
            .collect();
        assert_eq!(hidden.len(), 2, "..data and one timestamped dir: {hidden:?}");
        assert!(put(&mut files, "../escape", b"x", 0o644).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
