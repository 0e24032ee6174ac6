//! The one validation path of a job: compile its SQL, check the options of
//! every table it reads or writes with their connectors, and read its
//! configuration into [`Settings`].

use std::collections::BTreeMap;

use sluice_connectors::{Role, validate_table};
use sluice_sql::catalog::TableDef;
use sluice_sql::plan::Job;

use sluice_api::policy::CONFIG_KEY;

use crate::{Config, JobError, Secrets, Settings, data_policy};

/// A job that compiles, whose tables' options their connectors accept, and
/// whose configuration (its `SET` statements under the given overrides) is valid.
#[derive(Debug)]
pub struct ValidatedJob {
    pub job: Job,
    /// The job's `SET` statements with the overrides on top.
    pub config: Config,
    pub settings: Settings,
}

/// Validates job text (`file` names it in errors) under configuration
/// `overrides` (the config file, `--set` and flags, or a StreamJob's engine keys).
pub fn validate(text: &str, file: &str, overrides: &Config) -> Result<ValidatedJob, JobError> {
    validate_with(text, file, overrides, &Secrets::of(overrides))
}

/// [`validate`], with the hmac keys of the data policy from `secrets`.
pub fn validate_with(text: &str, file: &str, overrides: &Config, secrets: &Secrets) -> Result<ValidatedJob, JobError> {
    let job = compile_with(text, file, overrides, secrets)?;
    if job.settings.contains_key(CONFIG_KEY) {
        return Err(JobError::Config(format!(
            "a job cannot SET '{CONFIG_KEY}': its data policy comes from StreamJob.spec.dataPolicy, or `--data-policy FILE` outside Kubernetes"
        )));
    }
    let mut config = Config { values: job.settings.clone() };
    config.values.extend(overrides.values.clone());
    let settings = Settings::from_config(&config)?;
    Ok(ValidatedJob { job, config, settings })
}

/// Compiles job text without a data policy and checks its tables' connector options.
pub fn compile(text: &str, file: &str) -> Result<Job, JobError> {
    compile_with(text, file, &Config::default(), &Secrets::Unread)
}

/// Compiles job text under the data policy of `config` (hmac keys from the
/// files of its `sluice.secrets-dir`), as every process that runs it does.
pub fn compile_configured(text: &str, file: &str, config: &Config) -> Result<Job, JobError> {
    compile_with(text, file, config, &Secrets::of(config))
}

fn compile_with(text: &str, file: &str, config: &Config, secrets: &Secrets) -> Result<Job, JobError> {
    let policy = data_policy(config)?.unwrap_or_default();
    let job = sluice_sql::compile_with_policy(text, &policy, &|r| secrets.read(r))
        .map_err(|error| JobError::Sql { file: file.to_string(), error })?;
    check_tables(&job)?;
    Ok(job)
}

/// How many times each table is scanned by the job's sinks' queries.
pub fn scanned_tables(job: &Job) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in job.sinks.iter().flat_map(|s| s.input.scanned_tables()) {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// A table's `scan.parallelism` or `sink.parallelism` option, as in Flink.
pub fn table_parallelism(t: &TableDef, key: &str) -> Result<Option<usize>, JobError> {
    match t.options.get(key) {
        None => Ok(None),
        Some(v) => v.trim().parse::<usize>().ok().filter(|p| *p > 0).map(Some).ok_or_else(|| {
            JobError::Config(format!("table `{}`: '{key}' must be a positive integer, not '{v}'", t.name))
        }),
    }
}

/// The largest `scan.parallelism` of a table the job reads and `sink.parallelism`
/// of one it writes: vertices that run at a table's option rather than at the job's
/// parallelism. Invalid options count as absent ([`validate`] refuses them).
pub fn largest_table_parallelism(job: &Job) -> Option<usize> {
    let sinks = job.sinks.iter().filter_map(|s| table_parallelism(&s.table, "sink.parallelism").ok().flatten());
    let sources = scanned_tables(job)
        .into_keys()
        .filter_map(|name| job.tables.get(&name).and_then(|t| table_parallelism(t, "scan.parallelism").ok().flatten()));
    sinks.chain(sources).max()
}

/// The options of every table the job writes, and of every table it reads.
fn check_tables(job: &Job) -> Result<(), JobError> {
    for s in &job.sinks {
        validate_table(&s.table.name, &s.table.options, &s.table.sink_schema(), Role::Sink)?;
        table_parallelism(&s.table, "sink.parallelism")?;
    }
    for name in scanned_tables(job).keys() {
        if let Some(t) = job.tables.get(name) {
            validate_table(&t.name, &t.options, &t.physical, Role::Source)?;
            table_parallelism(t, "scan.parallelism")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT id FROM s;";

    fn overrides(pairs: &[(&str, &str)]) -> Config {
        Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn a_valid_job_has_typed_settings() {
        let v = validate(SQL, "j.sql", &overrides(&[("parallelism.default", "4")])).unwrap();
        assert_eq!(v.settings.parallelism, 4);
        assert_eq!(scanned_tables(&v.job).get("s"), Some(&1));
        assert!(v.settings.vertex_parallelism.is_empty());
        let key = crate::VERTEX_PARALLELISM_OVERRIDES;
        let v = validate(SQL, "j.sql", &overrides(&[(key, " ab12:4, cd34 : 2 ,")])).unwrap();
        let expected = [("ab12".to_string(), 4), ("cd34".to_string(), 2)].into_iter().collect();
        assert_eq!(v.settings.vertex_parallelism, expected);
    }

    #[test]
    fn the_largest_table_parallelism_counts_tables_read_and_written_only() {
        assert_eq!(largest_table_parallelism(&compile(SQL, "j.sql").unwrap()), None);
        let sql = "CREATE TABLE s (id BIGINT) WITH ('connector' = 'datagen', 'scan.parallelism' = '3');
CREATE TABLE unused (id BIGINT) WITH ('connector' = 'datagen', 'scan.parallelism' = '9');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole', 'sink.parallelism' = '5');
INSERT INTO o SELECT id FROM s;";
        assert_eq!(largest_table_parallelism(&compile(sql, "j.sql").unwrap()), Some(5));
        let sql = sql.replace("'sink.parallelism' = '5'", "'sink.parallelism' = '2'");
        assert_eq!(largest_table_parallelism(&compile(&sql, "j.sql").unwrap()), Some(3));
    }

    #[test]
    fn sql_connector_options_and_configuration_are_all_checked() {
        let e = validate("INSERT INTO nowhere SELECT 1;", "j.sql", &Config::default()).unwrap_err();
        assert!(e.to_string().starts_with("j.sql:1:"), "{e}");
        let bad_option = SQL.replace("'number-of-rows' = '10'", "'number-of-rows' = 'ten'");
        let e = validate(&bad_option, "j.sql", &Config::default()).unwrap_err();
        assert!(matches!(e, JobError::Connector(_)) && e.to_string().contains("number-of-rows"), "{e}");
        let bad_parallelism = SQL.replace("'blackhole'", "'blackhole', 'sink.parallelism' = '0'");
        let e = validate(&bad_parallelism, "j.sql", &Config::default()).unwrap_err();
        assert!(e.to_string().contains("'sink.parallelism' must be a positive integer"), "{e}");
        for (k, v, why) in [
            ("execution.checkpointing.interval", "1h30m", "is not a duration"),
            ("execution.checkpointing.interval", "10 s", "no checkpoint directory"),
            ("restart-strategy.type", "sometimes", "unknown strategy"),
            ("parallelism.default", "200", "exceeds pipeline.max-parallelism 128"),
            ("execution.checkpointing.dir", "ftp://x/y", "ftp"),
            ("pipeline.jobvertex-parallelism-overrides", "ab12:0", "vertex ab12: parallelism '0' must be"),
            ("pipeline.jobvertex-parallelism-overrides", "ab12:129", "from 1 to pipeline.max-parallelism 128"),
            ("pipeline.jobvertex-parallelism-overrides", "ab12=4", "'ab12=4' is not <vertex uid>:<parallelism>"),
            ("pipeline.jobvertex-parallelism-overrides", "ab12:2,ab12:3", "vertex ab12 is given twice"),
        ] {
            let e = validate(SQL, "j.sql", &overrides(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(why), "{k}={v}: {e}");
        }
    }
}
