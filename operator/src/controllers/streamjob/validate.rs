//! Validate: the SQL is resolved (from `sql` or `sqlConfigMapRef`) and compiled by the
//! engine's front end, and the spec's durations and image are checked, before anything
//! is planned from it.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::crd::{DeployedSpec, StreamJob, StreamJobSpec};
use crate::error::{Error, InvalidSpec};

/// Resolves the SQL and validates the spec: the spec as it would be deployed, or
/// [`Error::InvalidSpec`] saying what to fix (with the SQL's line and column).
pub async fn validate(ctx: &Context, job: &StreamJob, spec: &StreamJobSpec) -> Result<DeployedSpec, Error> {
    let ns = job.namespace().unwrap_or_default();
    let sql = match (&spec.sql, &spec.sql_config_map_ref) {
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
    };
    let deployed = DeployedSpec::resolve(spec, &sql);
    check(ctx, &job.name_any(), &deployed)?;
    Ok(deployed)
}

/// Static checks of a spec whose SQL is resolved. Compiling is cached per job and SQL text.
pub fn check(ctx: &Context, name: &str, spec: &DeployedSpec) -> Result<(), InvalidSpec> {
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
    let sql = spec.sql();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sql.hash(&mut h);
        h.finish()
    };
    if let Ok(cache) = ctx.validated.lock()
        && let Some((k, r)) = cache.get(name)
        && *k == key
    {
        return r.clone();
    }
    let result = sluice_sql::compile(sql).map(|_| ()).map_err(InvalidSpec::Sql);
    if let Ok(mut cache) = ctx.validated.lock() {
        cache.insert(name.to_string(), (key, result.clone()));
    }
    result
}
