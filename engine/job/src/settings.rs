//! The configuration keys of a run, read once into typed settings. Keys are
//! Flink's; lowest precedence first: the job's `SET` statements, `--config`,
//! `--set`, then dedicated flags.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_storage::{S3Options, Storage};

use crate::{Config, JobError, RestartStrategy};

/// Where a run starts from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Restore {
    /// Empty state.
    #[default]
    None,
    /// The newest checkpoint of the job's lineage, if any; a job that finished stays terminal.
    Latest,
    /// A checkpoint or savepoint directory, or its `_metadata`.
    Uri(String),
}

impl Restore {
    /// `execution.state-recovery.path`'s syntax: empty, `latest`, or a snapshot URI.
    pub fn parse(s: &str) -> Restore {
        match s.trim() {
            "" => Restore::None,
            "latest" => Restore::Latest,
            uri => Restore::Uri(uri.to_string()),
        }
    }
}

/// Checkpointing, from Flink's keys: `execution.checkpointing.dir` (or
/// `state.checkpoints.dir`), `.interval`, `.timeout` (default 10 min),
/// `.num-retained` (or `state.checkpoints.num-retained`, default 3) and
/// `.savepoint-dir` (or `state.savepoints.dir`).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSettings {
    /// The checkpoint directory's URI (the job's directory is below it).
    pub dir: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub retained: usize,
    pub savepoint_dir: Option<String>,
    /// Incremental checkpoints (`execution.checkpointing.incremental`, or
    /// Flink's older `state.backend.incremental`); on by default.
    pub incremental: bool,
    /// The `s3.*` keys.
    pub s3: S3Options,
}

/// The key of per-vertex parallelism overrides, Flink's name.
pub const VERTEX_PARALLELISM_OVERRIDES: &str = "pipeline.jobvertex-parallelism-overrides";

/// Every setting of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub parallelism: usize,
    pub max_parallelism: usize,
    /// `pipeline.jobvertex-parallelism-overrides`: vertex uid to parallelism,
    /// each within 1..=`max_parallelism`. Uids the job graph does not have are
    /// ignored when it is built (as Flink does).
    pub vertex_parallelism: BTreeMap<String, usize>,
    pub batch_size: usize,
    pub buffer_capacity: usize,
    /// Buffer debloating (`taskmanager.network.memory.buffer-debloat.enabled`,
    /// on by default here, and `.target`, 1 s): how long the data in flight on a
    /// backpressured channel should take the consumer; `None`: off.
    pub debloat_target: Option<Duration>,
    /// 0 disables idleness.
    pub idle_timeout: Duration,
    /// `table.exec.state.ttl`: keyed state of the changelog operators that was
    /// not written for this long (processing time) expires; 0 keeps it forever.
    pub state_ttl: Duration,
    /// `metrics.latency.interval`: how often sources send latency markers; 0
    /// turns latency tracking at sinks off (both histograms).
    pub latency_interval: Duration,
    pub checkpoint: CheckpointSettings,
    /// `state.backend.type` and the memory it may use.
    pub state_backend: StateBackendSettings,
    pub restart: RestartStrategy,
    pub restore: Restore,
    pub allow_non_restored_state: bool,
    /// The id of the data policy the configuration carries ([`sluice_api::policy::hash`]).
    pub data_policy_hash: Option<String>,
}

/// The first key that is set, of Flink's current and older names.
fn first<'a>(config: &'a Config, keys: &[&str]) -> Option<(&'a str, String)> {
    keys.iter().find_map(|k| config.get(k).map(|v| (v, k.to_string())))
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, JobError> {
        // The `openlineage.*` keys are checked here with the rest; the engine reads
        // them with its environment when it starts (`openlineage::Lineage::of`).
        crate::OpenLineageSettings::from_config(config)?;
        let checkpoint = CheckpointSettings::from_config(config)?;
        let restart = RestartStrategy::from_config(config, checkpoint.interval.is_some())?;
        let restore = Restore::parse(config.get("execution.state-recovery.path").unwrap_or(""));
        let parallelism = config.usize("parallelism.default", 1)?;
        let max_parallelism = config.usize("pipeline.max-parallelism", 128)?;
        if parallelism > max_parallelism {
            return Err(JobError::Config(format!(
                "parallelism {parallelism} exceeds pipeline.max-parallelism {max_parallelism}"
            )));
        }
        let vertex_parallelism =
            parse_vertex_parallelism(config.get(VERTEX_PARALLELISM_OVERRIDES).unwrap_or(""), max_parallelism)?;
        Ok(Settings {
            parallelism,
            max_parallelism,
            vertex_parallelism,
            batch_size: config.usize("execution.batch-size", 8192)?,
            buffer_capacity: config.usize("execution.buffer-capacity", 8)?,
            debloat_target: debloat_target(config)?,
            idle_timeout: Duration::from_millis(config.duration_ms("table.exec.source.idle-timeout", 0)?),
            state_ttl: Duration::from_millis(config.duration_ms("table.exec.state.ttl", 0)?),
            // Flink's default is 0 (off); markers cost one small message per source
            // subtask per interval, so Sluice keeps them on.
            latency_interval: Duration::from_millis(config.duration_ms("metrics.latency.interval", 100)?),
            checkpoint,
            state_backend: StateBackendSettings::from_config(config)?,
            restart,
            restore,
            allow_non_restored_state: config.bool("execution.state-recovery.ignore-unclaimed-state")?,
            data_policy_hash: config.get(sluice_api::policy::CONFIG_KEY).map(sluice_api::policy::hash),
        })
    }
}

/// Where the keyed state of the changelog operators lives.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StateBackendKind {
    /// On the heap (`hashmap`, Flink's default name): fastest, bounded by memory.
    #[default]
    HashMap,
    /// Hot keys on the heap, the rest spilled to an LSM on local disk
    /// (`disk`; Flink's `rocksdb` is read as it).
    Disk,
}

/// The state backend, from Flink's keys: `state.backend.type` (`hashmap` or
/// `disk`, default `hashmap`), `taskmanager.memory.managed.size` (the memory
/// the disk backend keeps state in, default 256 MiB) and
/// `state.backend.rocksdb.localdir` or `io.tmp.dirs` (where it spills, default
/// the system's temporary directory).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateBackendSettings {
    pub kind: StateBackendKind,
    /// Bytes of keyed state the disk backend keeps in memory, per process.
    pub managed_memory: u64,
    pub local_dir: Option<std::path::PathBuf>,
}

/// The disk backend's memory budget when `taskmanager.memory.managed.size` is not set.
pub const DEFAULT_MANAGED_MEMORY: u64 = 256 << 20;

impl StateBackendSettings {
    pub fn from_config(config: &Config) -> Result<StateBackendSettings, JobError> {
        let kind = match config.get("state.backend.type").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("hashmap") => StateBackendKind::HashMap,
            Some("disk") | Some("rocksdb") => StateBackendKind::Disk,
            Some(other) => {
                return Err(JobError::Config(format!(
                    "'state.backend.type' must be 'hashmap' (state on the heap) or 'disk' (spills to local disk; \
                     Flink's 'rocksdb' means the same here), not '{other}'"
                )));
            }
        };
        let managed_memory = config.memory_bytes("taskmanager.memory.managed.size", DEFAULT_MANAGED_MEMORY)?;
        if managed_memory == 0 {
            return Err(JobError::Config("'taskmanager.memory.managed.size' must be more than 0 bytes".into()));
        }
        let local_dir = first(config, &["state.backend.rocksdb.localdir", "io.tmp.dirs"])
            // `io.tmp.dirs` may list several, as in Flink; the first is used.
            .and_then(|(v, _)| v.split([',', ':']).map(str::trim).find(|d| !d.is_empty()).map(Into::into));
        Ok(StateBackendSettings { kind, managed_memory, local_dir })
    }
}

/// Buffer debloating, by Flink's keys. Flink leaves it off by default; Sluice
/// turns it on, since without it an aligned checkpoint under backpressure waits
/// behind every channel's full credits of whole batches.
fn debloat_target(config: &Config) -> Result<Option<Duration>, JobError> {
    let on = match config.get("taskmanager.network.memory.buffer-debloat.enabled") {
        None => true,
        Some(_) => config.bool("taskmanager.network.memory.buffer-debloat.enabled")?,
    };
    let target = config.duration_ms("taskmanager.network.memory.buffer-debloat.target", 1000)?;
    if on && target == 0 {
        return Err(JobError::Config(
            "'taskmanager.network.memory.buffer-debloat.target' must be above 0 (or set 'taskmanager.network.memory.buffer-debloat.enabled' = 'false')".into(),
        ));
    }
    Ok(on.then(|| Duration::from_millis(target)))
}

/// Flink's map syntax, `<uid>:<parallelism>,<uid>:<parallelism>`; empty for
/// none. Each parallelism must be within 1..=`max_parallelism`.
pub fn parse_vertex_parallelism(value: &str, max_parallelism: usize) -> Result<BTreeMap<String, usize>, JobError> {
    let key = VERTEX_PARALLELISM_OVERRIDES;
    let mut out = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((uid, p)) = entry.split_once(':').map(|(u, p)| (u.trim(), p.trim())).filter(|(u, _)| !u.is_empty())
        else {
            return Err(JobError::Config(format!(
                "'{key}': '{entry}' is not <vertex uid>:<parallelism> (the uids are in `sluice-engine explain`)"
            )));
        };
        let n = match p.parse::<usize>() {
            Ok(n) if (1..=max_parallelism).contains(&n) => n,
            _ => {
                return Err(JobError::Config(format!(
                    "'{key}': vertex {uid}: parallelism '{p}' must be an integer from 1 to pipeline.max-parallelism {max_parallelism}"
                )));
            }
        };
        if out.insert(uid.to_string(), n).is_some() {
            return Err(JobError::Config(format!("'{key}': vertex {uid} is given twice")));
        }
    }
    Ok(out)
}

impl CheckpointSettings {
    fn from_config(config: &Config) -> Result<CheckpointSettings, JobError> {
        let s3 = S3Options::from_config(|k| config.get(k).map(str::to_string));
        let interval = match first(config, &["execution.checkpointing.interval"]) {
            Some((v, k)) => {
                let ms = config.duration_ms(&k, 0)?;
                if ms == 0 {
                    return Err(JobError::Config(format!("'{k}': '{v}' must be a positive duration such as '10 s'")));
                }
                Some(Duration::from_millis(ms))
            }
            None => None,
        };
        let dir = match first(config, &["execution.checkpointing.dir", "state.checkpoints.dir"]) {
            Some((uri, key)) => {
                // The syntax only: no I/O happens until the job runs.
                Storage::open(uri.trim(), &s3).map_err(|e| JobError::Config(format!("'{key}': {e}")))?;
                Some(uri.trim().to_string())
            }
            None if interval.is_some() => {
                return Err(JobError::Config(
                    "checkpointing is on (execution.checkpointing.interval) but there is no checkpoint directory; pass --checkpoint-dir or set execution.checkpointing.dir".into(),
                ));
            }
            None => None,
        };
        let retained = match first(config, &["execution.checkpointing.num-retained", "state.checkpoints.num-retained"])
        {
            Some((_, k)) => config.usize(&k, 3)?,
            None => 3,
        };
        let savepoint_dir = match first(config, &["execution.checkpointing.savepoint-dir", "state.savepoints.dir"]) {
            Some((uri, key)) => {
                Storage::open(uri.trim(), &s3).map_err(|e| JobError::Config(format!("'{key}': {e}")))?;
                Some(uri.trim().to_string())
            }
            None => None,
        };
        let incremental = match first(config, &["execution.checkpointing.incremental", "state.backend.incremental"]) {
            Some((v, k)) => match v.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(JobError::Config(format!("'{k}': '{v}' must be true or false"))),
            },
            None => true,
        };
        Ok(CheckpointSettings {
            incremental,
            dir,
            interval,
            timeout: Duration::from_millis(config.duration_ms("execution.checkpointing.timeout", 600_000)?),
            retained,
            savepoint_dir,
            s3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn buffer_debloating_is_on_by_default_with_flinks_keys() {
        let on = Settings::from_config(&config(&[])).unwrap();
        assert_eq!(on.debloat_target, Some(Duration::from_secs(1)));
        let set = Settings::from_config(&config(&[("taskmanager.network.memory.buffer-debloat.target", "250 ms")]));
        assert_eq!(set.unwrap().debloat_target, Some(Duration::from_millis(250)));
        let off = config(&[("taskmanager.network.memory.buffer-debloat.enabled", "false")]);
        assert_eq!(Settings::from_config(&off).unwrap().debloat_target, None);
        let bad = config(&[("taskmanager.network.memory.buffer-debloat.enabled", "yes")]);
        let e = Settings::from_config(&bad).unwrap_err().to_string();
        assert!(e.contains("buffer-debloat.enabled") && e.contains("true or false"), "{e}");
        let zero = config(&[("taskmanager.network.memory.buffer-debloat.target", "0")]);
        assert!(Settings::from_config(&zero).unwrap_err().to_string().contains("must be above 0"));
        assert_eq!(Settings::from_config(&config(&[])).unwrap().latency_interval, Duration::from_millis(100));
    }

    #[test]
    fn the_state_backend_reads_flinks_keys_and_names_a_bad_value() {
        let default = Settings::from_config(&config(&[])).unwrap().state_backend;
        assert_eq!(default.kind, StateBackendKind::HashMap);
        assert_eq!(default.managed_memory, DEFAULT_MANAGED_MEMORY);
        let disk = config(&[
            ("state.backend.type", "RocksDB"),
            ("taskmanager.memory.managed.size", "64 mb"),
            ("io.tmp.dirs", "/scratch/a,/scratch/b"),
        ]);
        let disk = Settings::from_config(&disk).unwrap().state_backend;
        assert_eq!(disk.kind, StateBackendKind::Disk);
        assert_eq!(disk.managed_memory, 64 << 20);
        assert_eq!(disk.local_dir, Some("/scratch/a".into()));
        let e = Settings::from_config(&config(&[("state.backend.type", "forst")])).unwrap_err().to_string();
        assert!(e.contains("state.backend.type") && e.contains("'forst'") && e.contains("'disk'"), "{e}");
        let e = Settings::from_config(&config(&[("taskmanager.memory.managed.size", "lots")])).unwrap_err();
        assert!(e.to_string().contains("'lots' is not a memory size"), "{e}");
    }

    #[test]
    fn memory_sizes_take_flinks_units() {
        use crate::config::parse_memory_size as p;
        assert_eq!(p("1048576"), Some(1 << 20));
        assert_eq!(p("512m"), Some(512 << 20));
        assert_eq!(p(" 2 GB "), Some(2 << 30));
        assert_eq!(p("10kb"), Some(10 << 10));
        assert_eq!(p("7 bytes"), Some(7));
        assert_eq!(p("1.5g"), None);
        assert_eq!(p("m"), None);
        assert_eq!(p("99999999999t"), None);
    }
}
