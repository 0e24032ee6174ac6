//! Each deployment color's engine token: a Secret `<instance>-engine-token` (key
//! `token`, 32 random bytes in hex) that the operator creates once and mounts into
//! the coordinator and the workers. The coordinator's REST API requires it for
//! every request that is not a read (`--rest-token-file`), and the operator sends
//! it; the coordinator and the workers require it of each other when a worker
//! registers and on every data connection (`--cluster-secret-file`). Each color of
//! a blue-green job has its own. The Secret is owned by the StreamJob, so it goes
//! with it; it is never rewritten, so a running engine's token and the operator's
//! always agree.

use std::collections::BTreeMap;
use std::io::Read;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::Blueprint;

/// Where the engine pods read the token.
pub const DIR: &str = "/var/run/sluice/engine-token";
pub const KEY: &str = "token";

/// The token's file in the engine pods.
pub fn file() -> String {
    format!("{DIR}/{KEY}")
}

/// The Secret of the coordinator of `instance` (`<job>` or `<job>-green`).
pub fn secret_name(instance: &str) -> String {
    format!("{instance}-engine-token")
}

/// A new token: 32 bytes from the kernel's random source, in hex.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn build(d: &Blueprint, token: &str) -> Secret {
    Secret {
        metadata: d.meta(secret_name(&d.instance()), Some("coordinator")),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(KEY.to_string(), ByteString(token.as_bytes().to_vec()))])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_of_32_bytes() {
        let (a, b) = (generate().unwrap_or_default(), generate().unwrap_or_default());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(secret_name("clicks-green"), "clicks-green-engine-token");
    }
}
