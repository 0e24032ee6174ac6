//! The options of a nexmark table, checked against its declared columns.

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use super::model::{ColKind, Kind};
use crate::ConnectorError;
use crate::options::Options;

pub(crate) const OPTIONS: &str =
    "'nexmark.table', 'number-of-events', 'events-per-second', 'seed', 'nexmark.event-rate', 'nexmark.base-time'";

const DEFAULT_EVENT_RATE: u64 = 10_000;
/// 2024-01-01 00:00:00 UTC.
pub(super) const DEFAULT_BASE_TIME: i64 = 1_704_067_200_000;

#[derive(Debug, Clone)]
pub(crate) struct NexmarkConfig {
    pub(super) kind: Kind,
    pub(super) number_of_events: Option<u64>,
    pub(super) events_per_second: Option<u64>,
    pub(super) seed: u64,
    pub(super) inter_event_delay_us: f64,
    pub(super) base_time: i64,
    /// For each declared column, the index of the generated column.
    pub(super) projection: Vec<usize>,
}

impl NexmarkConfig {
    pub(crate) fn parse(o: &Options<'_>, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        let kind = match o.required("nexmark.table", "'bid', 'auction' or 'person'")?.trim() {
            t if t.eq_ignore_ascii_case("bid") => Kind::Bid,
            t if t.eq_ignore_ascii_case("auction") => Kind::Auction,
            t if t.eq_ignore_ascii_case("person") => Kind::Person,
            other => {
                return Err(o.error(format!(
                    "option 'nexmark.table' = '{other}' is invalid: expected 'bid', 'auction' or 'person'"
                )));
            }
        };
        let number_of_events = o.u64("number-of-events")?;
        let events_per_second = o.u64("events-per-second")?;
        if events_per_second == Some(0) {
            return Err(o.error("option 'events-per-second' must be at least 1"));
        }
        let seed = o.u64("seed")?.unwrap_or(0);
        let rate = o.u64("nexmark.event-rate")?.or(events_per_second).unwrap_or(DEFAULT_EVENT_RATE);
        if rate == 0 {
            return Err(o.error("option 'nexmark.event-rate' must be at least 1"));
        }
        let base_time = match o.get("nexmark.base-time") {
            None => DEFAULT_BASE_TIME,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(ms) => ms,
                Err(_) => sluice_format::time::parse_timestamp(v.trim()).map(|(ms, _)| ms).ok_or_else(|| {
                    o.error(format!(
                        "option 'nexmark.base-time' = '{v}' is invalid: expected epoch milliseconds or 'yyyy-MM-dd HH:mm:ss'"
                    ))
                })?,
            },
        };
        let cols = kind.columns();
        let describe = || {
            cols.iter()
                .map(|(n, k)| {
                    format!(
                        "{n} {}",
                        match k {
                            ColKind::Int64 => "BIGINT",
                            ColKind::Utf8 => "STRING",
                            ColKind::Timestamp => "TIMESTAMP(3)",
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut projection = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let Some(idx) = cols.iter().position(|(n, _)| n.eq_ignore_ascii_case(f.name())) else {
                return Err(o.error(format!(
                    "column `{}` is not a column of nexmark table '{}'; its columns are: {}",
                    f.name(),
                    kind.name(),
                    describe()
                )));
            };
            let ok = match cols[idx].1 {
                ColKind::Int64 => f.data_type() == &DataType::Int64,
                ColKind::Utf8 => f.data_type() == &DataType::Utf8,
                ColKind::Timestamp => {
                    matches!(f.data_type(), DataType::Timestamp(TimeUnit::Millisecond, _))
                }
            };
            if !ok {
                return Err(o.error(format!(
                    "column `{}` has type {}, but nexmark table '{}' makes it {}",
                    f.name(),
                    sluice_format::types::describe_arrow(f.data_type()),
                    kind.name(),
                    match cols[idx].1 {
                        ColKind::Int64 => "BIGINT",
                        ColKind::Utf8 => "STRING",
                        ColKind::Timestamp => "TIMESTAMP(3) or TIMESTAMP_LTZ(3)",
                    }
                )));
            }
            projection.push(idx);
        }
        o.check_all_used("nexmark", OPTIONS)?;
        Ok(NexmarkConfig {
            kind,
            number_of_events,
            events_per_second,
            seed,
            inter_event_delay_us: 1_000_000.0 / rate as f64,
            base_time,
            projection,
        })
    }
}
