//! Volumes, materialised as directories under the pod's directory and
//! bind-mounted over their container paths: emptyDir, configMap, secret,
//! downwardAPI, projected (service-account token + CA + namespace) and hostPath.
//! Contents are written once, when the pod starts.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::container::resolve_field;

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: i32) -> Result<()> {
    if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
        bail!("invalid volume path {rel:?}");
    }
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode as u32 & 0o777))?;
    Ok(())
}

fn write_items(
    dir: &Path,
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
                    Some(v) => write_file(dir, &it.path, v, it.mode.unwrap_or(default_mode))?,
                    None if optional => {}
                    None => bail!("{what}: key {:?} not found", it.key),
                }
            }
        }
        None => {
            for (k, v) in data {
                write_file(dir, k, v, default_mode)?;
            }
        }
    }
    Ok(())
}

async fn configmap_data(api: &Api<ConfigMap>, name: &str, optional: bool) -> Result<BTreeMap<String, Vec<u8>>> {
    match api.get_opt(name).await? {
        Some(cm) => {
            let mut m: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
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

fn downward(dir: &Path, pod: &Pod, items: &[DownwardAPIVolumeFile], mode: i32, host_ip: &str, pod_ip: &str) -> Result<()> {
    for it in items {
        let v = if let Some(f) = &it.field_ref {
            resolve_field(pod, &f.field_path, host_ip, pod_ip)
                .ok_or_else(|| anyhow!("unsupported fieldRef {}", f.field_path))?
        } else {
            String::new()
        };
        write_file(dir, &it.path, v.as_bytes(), it.mode.unwrap_or(mode))?;
    }
    Ok(())
}

/// Materialises every volume of `pod` under `pod_dir/volumes`, returning
/// each volume's host path. An error names the volume and what is missing;
/// the caller retries (the kubelet's FailedMount).
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
    host_ip: &str,
    pod_ip: &str,
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
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if v.empty_dir.is_some() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        } else if let Some(cm) = &v.config_map {
            let data = configmap_data(&cms, &cm.name, cm.optional == Some(true)).await.with_context(ctx)?;
            write_items(&dir, &data, cm.items.as_ref(), cm.default_mode.unwrap_or(0o644), &cm.name, cm.optional == Some(true))
                .with_context(ctx)?;
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let data = secret_data(&secrets, &name, s.optional == Some(true)).await.with_context(ctx)?;
            write_items(&dir, &data, s.items.as_ref(), s.default_mode.unwrap_or(0o644), &name, s.optional == Some(true))
                .with_context(ctx)?;
        } else if let Some(d) = &v.downward_api {
            downward(&dir, pod, d.items.as_deref().unwrap_or_default(), d.default_mode.unwrap_or(0o644), host_ip, pod_ip)
                .with_context(ctx)?;
        } else if let Some(p) = &v.projected {
            let mode = p.default_mode.unwrap_or(0o644);
            for src in p.sources.iter().flatten() {
                if let Some(t) = &src.service_account_token {
                    let sa = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_else(|| "default".into());
                    let token = request_token(client, &ns, &sa, pod, t.audience.clone(), t.expiration_seconds)
                        .await
                        .with_context(ctx)?;
                    write_file(&dir, &t.path, token.as_bytes(), mode)?;
                }
                if let Some(cm) = &src.config_map {
                    let data = configmap_data(&cms, &cm.name, cm.optional == Some(true)).await.with_context(ctx)?;
                    write_items(&dir, &data, cm.items.as_ref(), mode, &cm.name, cm.optional == Some(true))?;
                }
                if let Some(s) = &src.secret {
                    let data = secret_data(&secrets, &s.name, s.optional == Some(true)).await.with_context(ctx)?;
                    write_items(&dir, &data, s.items.as_ref(), mode, &s.name, s.optional == Some(true))?;
                }
                if let Some(d) = &src.downward_api {
                    downward(&dir, pod, d.items.as_deref().unwrap_or_default(), mode, host_ip, pod_ip)?;
                }
            }
        } else {
            bail!("{}: unsupported volume type (sluice-node supports emptyDir, configMap, secret, downwardAPI, projected, hostPath)", ctx());
        }
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
    resp.status
        .map(|s| s.token)
        .ok_or_else(|| anyhow!("token request for {ns}/{sa} returned no token"))
}
