//! S3 connection options, read from Flink-style configuration keys.

use std::fmt;

/// How to reach S3 or an S3-compatible store. Unset fields fall back to the standard AWS
/// configuration chain (environment, web identity/IRSA, profile).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible store, e.g. `http://minio:9000`. `None` means AWS S3.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when unset and none is configured in the environment.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`). Default: true when `endpoint` is set.
    pub path_style: Option<bool>,
    /// Static credentials. Both must be set to be used; they win over the AWS chain.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

impl S3Options {
    /// Reads the Flink keys `s3.endpoint`, `s3.region`, `s3.path.style.access`, `s3.access-key`
    /// and `s3.secret-key` through `get`. An unset endpoint falls back to `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`, an unset region to `AWS_REGION` or `AWS_DEFAULT_REGION`.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Self {
        Self::from_sources(get, |name| std::env::var(name).ok())
    }

    fn from_sources(get: impl Fn(&str) -> Option<String>, env: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let endpoint = non_empty(get("s3.endpoint"))
            .or_else(|| non_empty(env("AWS_ENDPOINT_URL_S3")))
            .or_else(|| non_empty(env("AWS_ENDPOINT_URL")));
        let region = non_empty(get("s3.region"))
            .or_else(|| non_empty(env("AWS_REGION")))
            .or_else(|| non_empty(env("AWS_DEFAULT_REGION")));
        let path_style = non_empty(get("s3.path.style.access")).and_then(|v| match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
        S3Options {
            endpoint,
            region,
            path_style,
            access_key: non_empty(get("s3.access-key")),
            secret_key: non_empty(get("s3.secret-key")),
        }
    }

    /// Path-style addressing as it will be used.
    pub(crate) fn effective_path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }
}

/// Never prints the secret key.
impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(conf: &[(&str, &str)], env: &[(&str, &str)]) -> S3Options {
        let conf: HashMap<String, String> = conf.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Options::from_sources(|k| conf.get(k).cloned(), |k| env.get(k).cloned())
    }

    #[test]
    fn reads_flink_keys() {
        let o = opts(
            &[
                ("s3.endpoint", "http://minio:9000"),
                ("s3.region", "eu-west-1"),
                ("s3.path.style.access", "False"),
                ("s3.access-key", "ak"),
                ("s3.secret-key", "sk"),
            ],
            &[("AWS_ENDPOINT_URL", "http://other"), ("AWS_REGION", "us-west-2")],
        );
        assert_eq!(
            o,
            S3Options {
                endpoint: Some("http://minio:9000".into()),
                region: Some("eu-west-1".into()),
                path_style: Some(false),
                access_key: Some("ak".into()),
                secret_key: Some("sk".into()),
            }
        );
        assert!(!o.effective_path_style());
    }

    #[test]
    fn falls_back_to_env_and_defaults_path_style() {
        let o = opts(&[], &[("AWS_ENDPOINT_URL", "http://env:9000"), ("AWS_DEFAULT_REGION", "ap-south-1")]);
        assert_eq!(o.endpoint.as_deref(), Some("http://env:9000"));
        assert_eq!(o.region.as_deref(), Some("ap-south-1"));
        assert!(o.effective_path_style());
        let o = opts(&[], &[("AWS_ENDPOINT_URL_S3", "http://s3only"), ("AWS_ENDPOINT_URL", "http://env")]);
        assert_eq!(o.endpoint.as_deref(), Some("http://s3only"));
        let o = opts(&[], &[]);
        assert_eq!(o, S3Options::default());
        assert!(!o.effective_path_style());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let o = opts(&[("s3.access-key", "AKIA1"), ("s3.secret-key", "hunter2")], &[]);
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
