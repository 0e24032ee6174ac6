//! The cluster PKI: one CA that signs the API server's serving certificate,
//! the admin client certificate (group `system:masters`), the node agents'
//! serving certificates, and a separate service-account signing key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// Paths of the PEM files written by [`Pki::generate`].
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, "sluice-sandbox-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Issues a leaf certificate signed by the CA in `pki`.
#[allow(clippy::too_many_arguments)]
pub fn issue_leaf(
    pki: &Pki,
    common_name: &str,
    organization: Option<&str>,
    dns_names: &[&str],
    ips: &[IpAddr],
    server: bool,
    out_cert: &Path,
    out_key: &Path,
) -> Result<()> {
    let ca_key_pem = std::fs::read_to_string(&pki.ca_key)?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    let params = ca_params()?;
    let issuer = Issuer::new(params, ca_key);

    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        p.distinguished_name.push(DnType::OrganizationName, o);
    }
    for d in dns_names {
        p.subject_alt_names.push(SanType::DnsName((*d).try_into()?));
    }
    for ip in ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = if server {
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    write(out_cert, &cert.pem(), 0o644)?;
    write(out_key, &key.serialize_pem(), 0o600)?;
    Ok(())
}

impl Pki {
    /// Generates a fresh CA, the API server's serving certificate (valid for
    /// loopback, the bridge address and the in-cluster names), an admin
    /// client certificate and a service-account key pair, under `dir`.
    pub fn generate(dir: &Path, apiserver_ips: &[IpAddr]) -> Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        };
        let ca_key = KeyPair::generate()?;
        let ca = ca_params()?.self_signed(&ca_key)?;
        write(&pki.ca_cert, &ca.pem(), 0o644)?;
        write(&pki.ca_key, &ca_key.serialize_pem(), 0o600)?;

        issue_leaf(
            &pki,
            "kube-apiserver",
            None,
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            apiserver_ips,
            true,
            &pki.apiserver_cert,
            &pki.apiserver_key,
        )?;
        issue_leaf(&pki, "sluice-admin", Some("system:masters"), &[], &[], false, &pki.admin_cert, &pki.admin_key)?;
        let sa = KeyPair::generate()?;
        write(&pki.sa_key, &sa.serialize_pem(), 0o600)?;
        write(&pki.sa_pub, &sa.public_key_pem(), 0o644)?;
        Ok(pki)
    }
}
