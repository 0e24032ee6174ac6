//! Validate: the SQL is resolved (from `sql` or `sqlConfigMapRef`) and compiled by the
//! engine's front end, and the spec's durations and image are checked, before anything
//! is planned from it.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};

use crate::context::Context;
use crate::crd::{StreamJob, StreamJobSpec};
use crate::error::Error;

/// Resolves the SQL and validates the spec. `Err` carries a message for the
/// status and an Event, with the SQL's line and column.
pub async fn validate(ctx: &Context, job: &StreamJob, spec: &StreamJobSpec) -> Result<Result<String, String>, Error> {
    let ns = job.namespace().unwrap_or_default();
    let sql = match (&spec.sql, &spec.sql_config_map_ref) {
        (Some(sql), _) => sql.clone(),
        (None, Some(r)) => match Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns).get_opt(&r.name).await? {
            None => return Ok(Err(format!("invalid spec: sqlConfigMapRef: ConfigMap {ns}/{} not found", r.name))),
            Some(cm) => match cm.data.and_then(|mut d| d.remove(&r.key)) {
                Some(sql) => sql,
                None => {
                    return Ok(Err(format!(
                        "invalid spec: sqlConfigMapRef: ConfigMap {ns}/{} has no key '{}'",
                        r.name, r.key
                    )));
                }
            },
        },
        (None, None) => return Ok(Err("invalid spec: set spec.sql or spec.sqlConfigMapRef".into())),
    };
    Ok(check(ctx, &job.name_any(), spec, &sql).map(|()| sql))
}

/// Static checks of a spec whose SQL is known. Compiling is cached per job and SQL text.
pub fn check(ctx: &Context, name: &str, spec: &StreamJobSpec, sql: &str) -> Result<(), String> {
    if spec.image.is_none() {
        return Err("invalid spec: spec.image is not set and the operator has no default engine image \
                    (--default-engine-image; the Helm value engine.image)"
            .into());
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
            return Err(format!("invalid spec: {field}: '{d}' is not a duration such as 30s, 5m or 1h"));
        }
    }
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
    let result = sluice_sql::compile(sql).map(|_| ()).map_err(|e| format!("invalid spec: {}", e.render("job.sql")));
    if let Ok(mut cache) = ctx.validated.lock() {
        cache.insert(name.to_string(), (key, result.clone()));
    }
    result
}
