//! Validate: the SQL is resolved (from `sql` or `sqlConfigMapRef`; once per reconcile,
//! and the autoscaler's basis hashes the same text), the spec's image and
//! durations are checked, and the job is validated as the engine pods will run it, before
//! anything is planned from it.
//!
//! The job goes through the engine's own validation, `sluice_job::validate` (the SQL
//! compiled, its tables' connector options, the engine configuration), with the
//! configuration the operator writes for the pods ([`spec_config`]): a spec the
//! operator accepts is a job the engine runs, and one the engine would refuse is
//! reported in the status instead of crash-looping in its pods.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{Api, ResourceExt};

use crate::context::{Context, Validation};
use crate::crd::{DeployedSpec, StreamJob, StreamJobSpec};
use crate::error::{Error, InvalidSpec};
use crate::resources::SQL_FILE;
use crate::resources::configmap::spec_config;

/// The job's SQL: `spec.sql`, or the text under `sqlConfigMapRef`'s key in its
/// ConfigMap; [`Error::InvalidSpec`] when neither gives one.
pub async fn resolve_sql(ctx: &Context, job: &StreamJob, spec: &StreamJobSpec) -> Result<String, Error> {
    let ns = job.namespace().unwrap_or_default();
    Ok(match (&spec.sql, &spec.sql_config_map_ref) {
        (Some(sql), _) => sql.clone(),
        (None, Some(r)) => {
            let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?
                .ok_or_else(|| InvalidSpec::ConfigMapNotFound { namespace: ns.clone(), name: r.name.clone() })?;
            cm.data.and_then(|mut d| d.remove(&r.key)).ok_or_else(|| InvalidSpec::ConfigMapKeyMissing {
                namespace: ns.clone(),
                name: r.name.clone(),
                key: r.key.clone(),
            })?
        }
        (None, None) => return Err(InvalidSpec::NoSql.into()),
    })
}

/// Validates the spec with its resolved SQL (see [`resolve_sql`]): the spec as it
/// would be deployed, or [`Error::InvalidSpec`] saying what to fix.
pub async fn validate(
    ctx: &Context,
    job: &StreamJob,
    spec: &StreamJobSpec,
    sql: String,
) -> Result<DeployedSpec, Error> {
    let ns = job.namespace().unwrap_or_default();
    // The data policy's hmac keys: each Secret and key must exist (their values are
    // never read here: the engine pods mount them).
    for r in spec.data_policy.secrets() {
        let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns).get_opt(&r.name).await?;
        let has_key = secret.as_ref().is_some_and(|s| {
            s.data.as_ref().is_some_and(|d| d.contains_key(&r.key))
                || s.string_data.as_ref().is_some_and(|d| d.contains_key(&r.key))
        });
        if !has_key {
            return Err(InvalidSpec::PolicySecret {
                namespace: ns.clone(),
                name: r.name.clone(),
                key: r.key.clone(),
                found: secret.is_some(),
            }
            .into());
        }
    }
    // A pod template may not widen the pods' privileges unless the namespace allows it.
    if let Some(template) = &spec.pod_template {
        let widened = crate::resources::pod_security::widenings(template);
        if !widened.is_empty() && !labelled(ctx, &ns, crate::resources::pod_security::ALLOW_LABEL).await {
            return Err(InvalidSpec::PrivilegedPodTemplate(widened.join("; ")).into());
        }
    }
    let deployed = DeployedSpec::resolve(spec, &sql);
    let governed = labelled(ctx, &ns, REQUIRE_DATA_POLICY).await;
    check(&ctx.validated, &job.name_any(), &deployed, governed)?;
    Ok(deployed)
}

/// The namespace label that makes a data policy mandatory for `pii` columns. The
/// chart's ValidatingAdmissionPolicy refuses what the manifest shows; the operator
/// refuses, with the SQL's column lineage, what only the plan shows, and covers
/// clusters without the admission policy.
pub const REQUIRE_DATA_POLICY: &str = "sluice.dev/require-data-policy";

/// How long a namespace's label is trusted before it is read again.
const GOVERNED_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether `ns` carries `label = "true"` ([`REQUIRE_DATA_POLICY`], or
/// [`crate::resources::pod_security::ALLOW_LABEL`]), read at most every
/// [`GOVERNED_TTL`]. A namespace the operator cannot read carries no label for it:
/// its checks apply (the admission policy still holds there).
async fn labelled(ctx: &Context, ns: &str, label: &str) -> bool {
    let now = std::time::Instant::now();
    let key = format!("{ns}\n{label}");
    if let Ok(cache) = ctx.namespace_labels.lock()
        && let Some((at, g)) = cache.get(&key)
        && now.duration_since(*at) < GOVERNED_TTL
    {
        return *g;
    }
    let g = match Api::<Namespace>::all(ctx.client.clone()).get_opt(ns).await {
        Ok(n) => n.and_then(|n| n.metadata.labels).is_some_and(|l| l.get(label).map(String::as_str) == Some("true")),
        Err(e) => {
            tracing::debug!(namespace = ns, error = %e, "cannot read the namespace's labels; taking {label} as unset");
            false
        }
    };
    if let Ok(mut cache) = ctx.namespace_labels.lock() {
        cache.insert(key, (now, g));
    }
    g
}

/// The checks of a spec whose SQL is resolved. The engine's validation of the job is
/// cached per job (`name`), and runs again only when the SQL or the engine
/// configuration change.
pub fn check(
    cache: &Mutex<HashMap<String, Validation>>,
    name: &str,
    spec: &DeployedSpec,
    governed: bool,
) -> Result<(), InvalidSpec> {
    if spec.image.is_none() {
        return Err(InvalidSpec::NoImage);
    }
    for (field, d) in [
        ("upgrade.readinessTimeout", Some(&spec.upgrade.readiness_timeout)),
        ("upgrade.stabilizationPeriod", Some(&spec.upgrade.stabilization_period)),
        ("upgrade.savepointTimeout", Some(&spec.upgrade.savepoint_timeout)),
        ("checkpointing.interval", Some(&spec.checkpointing.interval)),
        ("savepoints.interval", spec.savepoints.interval.as_ref()),
        ("savepoints.maxAge", spec.savepoints.max_age.as_ref()),
    ] {
        if let Some(d) = d
            && crate::crd::parse_duration(d).is_none()
        {
            return Err(InvalidSpec::Duration { field, value: d.clone() });
        }
    }
    let config = spec_config(spec);
    let key = {
        let mut h = DefaultHasher::new();
        (spec.sql(), &config, governed).hash(&mut h);
        h.finish()
    };
    if let Ok(cache) = cache.lock()
        && let Some((k, r)) = cache.get(name)
        && *k == key
    {
        return r.clone();
    }
    let result = check_job(spec.sql(), config, governed);
    if let Ok(mut cache) = cache.lock() {
        cache.insert(name.to_string(), (key, result.clone()));
    }
    result
}

/// The engine's validation of the job its pods will run: `sql` under `config`, the
/// engine keys the operator writes for them.
pub fn check_job(sql: &str, config: BTreeMap<String, String>, governed: bool) -> Result<(), InvalidSpec> {
    // The hmac keys are the pods' to read; [`validate`] checks that their Secrets exist.
    let config = sluice_job::Config { values: config };
    let v = sluice_job::validate_with(sql, SQL_FILE, &config, &sluice_job::Secrets::Unread)
        .map_err(|e| InvalidSpec::Job(Arc::new(e)))?;
    if governed {
        let policy = sluice_job::data_policy(&config).map_err(|e| InvalidSpec::Job(Arc::new(e)))?.unwrap_or_default();
        let leaks = sluice_job::unmasked_pii(&v.job, &policy);
        if !leaks.is_empty() {
            return Err(InvalidSpec::UnmaskedPii(leaks.join("; ")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;
    use sluice_job::JobError;

    use super::*;

    const SQL: &str = "CREATE TABLE s (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');
CREATE TABLE o (x BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/out', 'format' = 'csv');
INSERT INTO o SELECT x FROM s;";

    fn spec(sql: &str, extra: serde_json::Value) -> DeployedSpec {
        let mut v = json!({
            "image": "sluice/engine:0.1.0",
            "parallelism": 2,
            "checkpointing": {"interval": "5s", "storage": "s3://sluice/chk"},
            "savepoints": {"directory": "s3://sluice/sp"},
            "s3": {"endpoint": "http://s3:9000"},
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        DeployedSpec::resolve(&serde_json::from_value(v).unwrap(), sql)
    }

    fn checked(spec: &DeployedSpec) -> Result<(), InvalidSpec> {
        check(&Mutex::default(), "clicks", spec, false)
    }

    /// The message of a spec the engine's validation refuses, and the engine's error.
    fn refused(spec: &DeployedSpec) -> (String, Arc<JobError>) {
        let e = checked(spec).unwrap_err();
        let InvalidSpec::Job(source) = &e else { panic!("expected the engine's validation to refuse the job: {e:?}") };
        (e.to_string(), source.clone())
    }

    #[test]
    fn a_job_the_engine_runs_is_valid() {
        assert!(checked(&spec(SQL, json!({}))).is_ok());
        assert!(checked(&spec(SQL, json!({"config": {"restart-strategy.type": "fixed-delay"}}))).is_ok());
    }

    #[test]
    fn bad_sql_is_reported_with_its_line_and_column() {
        let (message, source) = refused(&spec("INSERT INTO o SELEC x FROM s;", json!({})));
        assert!(matches!(*source, JobError::Sql { .. }), "{source:?}");
        assert!(message.starts_with("invalid spec: job.sql:1:"), "{message}");
    }

    /// What the engine's connectors refuse is refused here, with the table and the option.
    #[test]
    fn a_bad_connector_option_is_reported_with_the_table_and_the_option() {
        for (from, to, option) in [
            (
                "'format' = 'csv'",
                "'format' = 'csv', 'sink.rolling-policy.file-szie' = '1MB'",
                "'sink.rolling-policy.file-szie'",
            ),
            ("'format' = 'csv'", "'format' = 'xml'", "'xml'"),
            ("'rows-per-second' = '10'", "'number-of-rows' = 'ten'", "number-of-rows"),
        ] {
            let (message, source) = refused(&spec(&SQL.replacen(from, to, 1), json!({})));
            assert!(matches!(*source, JobError::Connector(_)), "{source:?}");
            assert!(message.starts_with("invalid spec: table `"), "{message}");
            assert!(message.contains(option), "{message} does not name {option}");
        }
    }

    /// The engine configuration checked is the one the pods get: `spec.config` under the
    /// spec's own fields.
    #[test]
    fn the_engine_configuration_of_the_pods_is_checked() {
        let (message, source) = refused(&spec(SQL, json!({"config": {"restart-strategy.type": "sometimes"}})));
        assert!(matches!(*source, JobError::Config(_)), "{source:?}");
        assert!(message.contains("'restart-strategy.type'"), "{message}");
        let (message, _) = refused(&spec(SQL, json!({"checkpointing": {"interval": "5s", "storage": "ftp://b/chk"}})));
        assert!(message.contains("'execution.checkpointing.dir'") && message.contains("ftp"), "{message}");
        // `parallelism` wins over the same key in `spec.config`.
        assert!(checked(&spec(SQL, json!({"config": {"parallelism.default": "0"}}))).is_ok());
    }

    #[test]
    fn the_image_and_the_durations_are_checked_before_the_job() {
        let mut no_image = spec("not even SQL", json!({})).spec().clone();
        no_image.image = None;
        assert!(matches!(checked(&DeployedSpec::resolve(&no_image, "not even SQL")), Err(InvalidSpec::NoImage)));
        let slow = spec("not even SQL", json!({"upgrade": {"savepointTimeout": "a while"}}));
        assert_eq!(
            checked(&slow).unwrap_err().to_string(),
            "invalid spec: upgrade.savepointTimeout: 'a while' is not a duration such as 30s, 5m or 1h"
        );
    }

    /// The verdict is cached per job, and judged again when the SQL or the configuration change.
    #[test]
    fn the_verdict_is_cached_until_the_sql_or_the_configuration_change() {
        let cache = Mutex::default();
        let good = spec(SQL, json!({}));
        let bad_config = spec(SQL, json!({"config": {"restart-strategy.type": "sometimes"}}));
        let bad_sql = spec("INSERT INTO o SELEC x FROM s;", json!({}));
        assert!(check(&cache, "clicks", &good, false).is_ok());
        assert!(check(&cache, "clicks", &bad_config, false).is_err());
        assert!(check(&cache, "clicks", &bad_sql, false).is_err());
        assert!(check(&cache, "clicks", &good, false).is_ok());
        // An entry planted under the same key shows that a hit is not judged again.
        let key = cache.lock().unwrap().get("clicks").map(|(k, _)| *k).unwrap();
        cache.lock().unwrap().insert("clicks".into(), (key, Err(InvalidSpec::NoSql)));
        assert!(matches!(check(&cache, "clicks", &good, false), Err(InvalidSpec::NoSql)));
        assert!(check(&cache, "other", &good, false).is_ok());
    }

    /// In a governed namespace, a pii column that reaches a sink unmasked is refused, by
    /// the plan's column lineage; one the job does not write, or masks, passes.
    #[test]
    fn a_governed_namespace_refuses_pii_that_reaches_a_sink_unmasked() {
        let sql = "CREATE TABLE s (x BIGINT, email STRING, ssn STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '10');
CREATE TABLE o (x BIGINT, e STRING) WITH ('connector' = 'filesystem', 'path' = 's3://sluice/out', 'format' = 'csv');
INSERT INTO o SELECT x, UPPER(email) FROM s;";
        let tags = json!({"s.email": ["pii"], "s.ssn": ["pii"]});
        let mask = |columns: serde_json::Value| {
            spec_config(&spec(sql, json!({"dataPolicy": {"columns": columns, "tags": tags}})))
        };
        let e = check_job(sql, mask(json!([{"match": {"column": "ssn"}, "action": "null"}])), true).unwrap_err();
        assert!(e.to_string().contains("sink `o` column `e` ← `s.email`"), "{e}");
        assert!(!e.to_string().contains("ssn"), "{e}");
        assert!(check_job(sql, mask(json!([{"match": {"column": "ssn"}, "action": "null"}])), false).is_ok());
        assert!(check_job(sql, mask(json!([{"match": {"tag": "pii"}, "action": "null"}])), true).is_ok());
    }
}
