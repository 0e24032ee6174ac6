//! The `nexmark` source: deterministic generators of the Nexmark benchmark's
//! person, auction and bid streams, after nexmark-flink's `NexmarkGenerator`
//! (itself from Apache Beam).
//!
//! The global event stream repeats a pattern of 50 events: 1 person, 3
//! auctions, 46 bids. Event `n` happens at `base-time + n / event-rate`
//! (10 000 events per second of event time by default). Ids are dense and
//! start at 1000; a bid's auction is one of the last "hot" auctions with
//! probability 1/2 (else a random recent auction), its bidder a hot person
//! with probability 3/4, and so on, as in the reference generator.
//!
//! Each event's fields come from a PRNG seeded with (seed, event number), so
//! an event is the same whichever subtask makes it and whatever the batch
//! size: the three tables of one seed describe one consistent stream, and a
//! table holds the same rows at any parallelism. Subtask `i` of `p` makes the
//! `i`-th, `(i+p)`-th, … event of its table's kind, so subtasks advance
//! through event time together.
//!
//! Checkpoints: a split is one stride of the table's events, state (kind,
//! split, stride, events produced, event limit of the split). A fresh subtask
//! `i` of `p` owns split `i` of stride `p`; after a restore at parallelism
//! `q`, subtask `j` owns the restored splits whose index is `j` modulo `q` and
//! takes batches from them in turn.
//!
//! Options: `nexmark.table` (`bid`, `auction` or `person`, required),
//! `number-of-events` (total events of all three kinds; bounded if set),
//! `events-per-second` (wall-clock throttle of the whole stream, default
//! none), `seed` (default 0), `nexmark.event-rate` (events per second of event
//! time; default `events-per-second`, else 10000), `nexmark.base-time` (the
//! first event's time, epoch millis or `yyyy-MM-dd HH:mm:ss`, default
//! 2024-01-01 00:00:00 UTC).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::options::Options;
use crate::rng::{SplitMix64, below, seed_of};
use crate::state::{Dec, Enc, StrideSplit, TAG_NEXMARK, merge_plan, merged_batch, total_remaining};
use crate::throttle::Throttle;
use crate::{ConnectorError, SourceContext, SourceEvent, SourceReader};

pub(crate) const OPTIONS: &str =
    "'nexmark.table', 'number-of-events', 'events-per-second', 'seed', 'nexmark.event-rate', 'nexmark.base-time'";

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
const AUCTION_ID_LEAD: u64 = 10;
const PERSON_ID_LEAD: u64 = 10;
const HOT_SELLER_RATIO: u64 = 100;
const HOT_AUCTION_RATIO: u64 = 100;
const HOT_BIDDER_RATIO: u64 = 100;
// NexmarkConfiguration defaults.
const HOT_AUCTION_RATIO_CFG: u64 = 2;
const HOT_SELLERS_RATIO_CFG: u64 = 4;
const HOT_BIDDERS_RATIO_CFG: u64 = 4;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const AVG_PERSON_BYTE_SIZE: usize = 200;
const AVG_AUCTION_BYTE_SIZE: usize = 500;
const AVG_BID_BYTE_SIZE: usize = 100;
const DEFAULT_EVENT_RATE: u64 = 10_000;
/// 2024-01-01 00:00:00 UTC.
const DEFAULT_BASE_TIME: i64 = 1_704_067_200_000;

const HOT_CHANNELS_RATIO: u64 = 2;
const CHANNELS_NUMBER: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Person,
    Auction,
    Bid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColKind {
    Int64,
    Utf8,
    Timestamp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }

    /// The table's columns in nexmark-flink's order.
    fn columns(self) -> &'static [(&'static str, ColKind)] {
        use ColKind::*;
        match self {
            Kind::Bid => &[
                ("auction", Int64),
                ("bidder", Int64),
                ("price", Int64),
                ("channel", Utf8),
                ("url", Utf8),
                ("dateTime", Timestamp),
                ("extra", Utf8),
            ],
            Kind::Auction => &[
                ("id", Int64),
                ("itemName", Utf8),
                ("description", Utf8),
                ("initialBid", Int64),
                ("reserve", Int64),
                ("dateTime", Timestamp),
                ("expires", Timestamp),
                ("seller", Int64),
                ("category", Int64),
                ("extra", Utf8),
            ],
            Kind::Person => &[
                ("id", Int64),
                ("name", Utf8),
                ("emailAddress", Utf8),
                ("creditCard", Utf8),
                ("city", Utf8),
                ("state", Utf8),
                ("dateTime", Timestamp),
                ("extra", Utf8),
            ],
        }
    }

    /// Offset of this kind within each group of 50 events, and its count.
    fn slot(self) -> (u64, u64) {
        match self {
            Kind::Person => (0, PERSON_PROPORTION),
            Kind::Auction => (PERSON_PROPORTION, AUCTION_PROPORTION),
            Kind::Bid => (PERSON_PROPORTION + AUCTION_PROPORTION, BID_PROPORTION),
        }
    }

    /// The event number of the `k`-th event of this kind.
    pub(crate) fn event_number(self, k: u64) -> u64 {
        let (off, count) = self.slot();
        k / count * TOTAL_PROPORTION + off + k % count
    }

    /// How many of the first `n` events are of this kind.
    pub(crate) fn count_in(self, n: u64) -> u64 {
        let (off, count) = self.slot();
        n / TOTAL_PROPORTION * count + (n % TOTAL_PROPORTION).saturating_sub(off).min(count)
    }
}

#[cfg(test)]
pub(crate) fn kind_of_event(n: u64) -> Kind {
    match n % TOTAL_PROPORTION {
        r if r < PERSON_PROPORTION => Kind::Person,
        r if r < PERSON_PROPORTION + AUCTION_PROPORTION => Kind::Auction,
        _ => Kind::Bid,
    }
}

#[derive(Debug, Clone)]
pub(crate) struct NexmarkConfig {
    kind: Kind,
    number_of_events: Option<u64>,
    events_per_second: Option<u64>,
    seed: u64,
    inter_event_delay_us: f64,
    base_time: i64,
    /// For each declared column, the index of the generated column.
    projection: Vec<usize>,
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

// ---------------------------------------------------------------------------
// The generator's arithmetic, after nexmark-flink's model generators.

fn last_base0_person_id(event_id: u64) -> u64 {
    let epoch = event_id / TOTAL_PROPORTION;
    let mut offset = event_id % TOTAL_PROPORTION;
    if offset >= PERSON_PROPORTION {
        offset = PERSON_PROPORTION - 1;
    }
    epoch * PERSON_PROPORTION + offset
}

fn last_base0_auction_id(event_id: u64) -> u64 {
    let mut epoch = event_id / TOTAL_PROPORTION;
    let mut offset = event_id % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        // A person comes next: go back to the last auction of the previous epoch.
        if epoch == 0 {
            return 0;
        }
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

fn next_base0_person_id(event_id: u64, r: &mut SplitMix64) -> u64 {
    let num_people = last_base0_person_id(event_id) + 1;
    let active = num_people.min(NUM_ACTIVE_PEOPLE);
    let n = r.below(active + PERSON_ID_LEAD);
    num_people - active + n
}

fn next_base0_auction_id(event_id: u64, r: &mut SplitMix64) -> u64 {
    let max_auction = last_base0_auction_id(event_id);
    let min_auction = max_auction.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min_auction + r.below(max_auction - min_auction + 1 + AUCTION_ID_LEAD)
}

fn next_price(r: &mut SplitMix64) -> i64 {
    (10f64.powf(r.next_f64() * 6.0) * 100.0).round() as i64
}

/// `StringsGenerator.nextString`: 3..max-1 letters with occasional `special`
/// characters (1 in 13), trimmed when `special` is a space. One draw per
/// character.
fn push_next_string(out: &mut Vec<u8>, r: &mut SplitMix64, max_length: u64, special: u8) {
    let len = 3 + r.below(max_length - 3);
    let start = out.len();
    for _ in 0..len {
        let x = r.next_u64();
        if below(x, 13) == 0 {
            out.push(special);
        } else {
            out.push(LETTERS[(x & 0xFF) as usize]);
        }
    }
    if special == b' ' {
        let s = &out[start..];
        let first = s.iter().position(|c| *c != b' ').unwrap_or(s.len());
        let last = s.iter().rposition(|c| *c != b' ').map_or(first, |i| i + 1);
        out.copy_within(start + first..start + last, start);
        out.truncate(start + last - first);
    }
}

/// Byte → lower-case letter, evenly (multiply-shift).
const LETTERS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = b'a' + ((i * 26) >> 8) as u8;
        i += 1;
    }
    t
};

/// `StringsGenerator.nextExtra`: letters so that `current + len` averages
/// `desired`. Eight letters per 64-bit draw.
fn push_next_extra(out: &mut Vec<u8>, r: &mut SplitMix64, current: usize, desired: usize) {
    if current > desired {
        return;
    }
    let desired = desired - current;
    let delta = (desired as f64 * 0.2).round() as usize;
    let min = desired - delta;
    let size = min + if delta == 0 { 0 } else { r.below(2 * delta as u64) as usize };
    let mut left = size;
    while left > 0 {
        let x = r.next_u64().to_le_bytes();
        let take = left.min(8);
        let mut chunk = [0u8; 8];
        for i in 0..8 {
            chunk[i] = LETTERS[x[i] as usize];
        }
        out.extend_from_slice(&chunk[..take]);
        left -= take;
    }
}

fn base_url(r: &mut SplitMix64) -> String {
    let mut s = b"https://www.nexmark.com/".to_vec();
    for _ in 0..3 {
        push_next_string(&mut s, r, 5, b'_');
        s.push(b'/');
    }
    s.extend_from_slice(b"item.htm?query=1");
    String::from_utf8(s).unwrap_or_default()
}

// ---------------------------------------------------------------------------

/// Column buffers for one batch; only the generated columns that are
/// declared are filled.
struct Buffers {
    ints: Vec<Vec<i64>>,
    strs: Vec<StrCol>,
    /// Generated column index → (is string, slot in ints/strs), or None if not wanted.
    slots: Vec<Option<(bool, usize)>>,
}

impl Buffers {
    #[inline]
    fn int(&mut self, col: usize, v: i64) {
        if let Some((false, s)) = self.slots[col] {
            self.ints[s].push(v);
        }
    }

    #[inline]
    fn str(&mut self, col: usize, v: &str) {
        if let Some((true, s)) = self.slots[col] {
            self.strs[s].push(v.as_bytes());
        }
    }

    /// Appends generated ASCII text.
    #[inline]
    fn bytes(&mut self, col: usize, v: &[u8]) {
        if let Some((true, s)) = self.slots[col] {
            self.strs[s].push(v);
        }
    }

    /// Generates text straight into the column (or into `scratch` when the
    /// column is not wanted, so that the same random draws are consumed);
    /// returns its length.
    #[inline]
    fn generate(&mut self, col: usize, scratch: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> usize {
        if let Some((true, s)) = self.slots[col] {
            let c = &mut self.strs[s];
            let start = c.values.len();
            f(&mut c.values);
            c.offsets.push(c.values.len() as i32);
            c.values.len() - start
        } else {
            scratch.clear();
            f(scratch);
            scratch.len()
        }
    }

    fn wants(&self, col: usize) -> bool {
        self.slots[col].is_some()
    }
}

/// A string column being built: values and offsets, validated once per batch.
struct StrCol {
    values: Vec<u8>,
    offsets: Vec<i32>,
}

impl StrCol {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol { values: Vec::with_capacity(bytes), offsets }
    }

    #[inline]
    fn push(&mut self, v: &[u8]) {
        self.values.extend_from_slice(v);
        self.offsets.push(self.values.len() as i32);
    }

    fn finish(self) -> Result<StringArray, String> {
        if self.values.len() > i32::MAX as usize {
            return Err("a batch of nexmark strings exceeds 2 GiB; lower the batch size".into());
        }
        StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(self.offsets)), Buffer::from_vec(self.values), None)
            .map_err(|e| e.to_string())
    }
}

pub(crate) struct NexmarkReader {
    table: String,
    schema: SchemaRef,
    cfg: NexmarkConfig,
    /// The strides of this kind's events this subtask makes: on a fresh start
    /// one, split `i` of stride `p`; after a restore, those it owns.
    splits: Vec<StrideSplit>,
    /// The split the next batch comes from (round robin).
    cursor: usize,
    batch_size: usize,
    throttle: Option<Throttle>,
    hot_urls: [String; 4],
    channel_cache: Vec<Option<(String, String)>>,
    scratch: Vec<u8>,
    extra: Vec<u8>,
}

impl NexmarkReader {
    pub(crate) fn new(ctx: &SourceContext, cfg: NexmarkConfig) -> Result<Self, ConnectorError> {
        let p = ctx.parallelism.max(1) as u64;
        let restored = match &ctx.restored_splits {
            None => None,
            Some(blobs) => Some(
                blobs
                    .iter()
                    .map(|b| decode_split(b, cfg.kind))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|message| ConnectorError::State { table: ctx.table.clone(), message })?,
            ),
        };
        let splits = StrideSplit::assign(restored, ctx.subtask, p as usize, |i, p| {
            cfg.number_of_events.map(|n| {
                let total = cfg.kind.count_in(n);
                total / p as u64 + u64::from(total % p as u64 > i as u64)
            })
        });
        // The throttle limits the whole stream; this subtask's share of it is
        // its share of this kind's events.
        let (_, count) = cfg.kind.slot();
        let throttle = cfg.events_per_second.map(|eps| {
            let kind_rate = (eps as f64 * count as f64 / TOTAL_PROPORTION as f64 / p as f64).max(1.0);
            Throttle::new(kind_rate.round() as u64)
        });
        let mut r = SplitMix64::new(seed_of(&[cfg.seed, 0x4855_5253]));
        let hot_urls = [base_url(&mut r), base_url(&mut r), base_url(&mut r), base_url(&mut r)];
        Ok(NexmarkReader {
            table: ctx.table.clone(),
            schema: ctx.schema.clone(),
            cfg,
            splits,
            cursor: 0,
            batch_size: ctx.batch_size.max(1),
            throttle,
            hot_urls,
            channel_cache: Vec::new(),
            scratch: Vec::new(),
            extra: Vec::new(),
        })
    }

    fn timestamp(&self, event_number: u64) -> i64 {
        self.cfg.base_time + (event_number as f64 * self.cfg.inter_event_delay_us) as i64 / 1000
    }

    fn channel(&mut self, n: u64) -> (&str, &str) {
        if self.channel_cache.is_empty() {
            self.channel_cache = vec![None; CHANNELS_NUMBER as usize];
        }
        let seed = self.cfg.seed;
        let entry = self.channel_cache[n as usize].get_or_insert_with(|| {
            let mut r = SplitMix64::new(seed_of(&[seed, 0x4348_414e, n]));
            let mut url = base_url(&mut r);
            if r.below(10) > 0 {
                let rev = (n as i32).reverse_bits().unsigned_abs();
                url.push_str(&format!("&channel_id={rev}"));
            }
            (format!("channel-{n}"), url)
        });
        (&entry.0, &entry.1)
    }

    fn gen_bid(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
        let event_id = n;
        let auction = if r.below(HOT_AUCTION_RATIO_CFG) > 0 {
            (last_base0_auction_id(event_id) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            next_base0_auction_id(event_id, r)
        } as i64
            + FIRST_AUCTION_ID;
        let bidder = if r.below(HOT_BIDDERS_RATIO_CFG) > 0 {
            (last_base0_person_id(event_id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            next_base0_person_id(event_id, r)
        } as i64
            + FIRST_PERSON_ID;
        let price = next_price(r);
        b.int(0, auction);
        b.int(1, bidder);
        b.int(2, price);
        if r.below(HOT_CHANNELS_RATIO) > 0 {
            let i = r.below(4) as usize;
            b.str(3, HOT_CHANNELS[i]);
            if b.wants(4) {
                b.str(4, &self.hot_urls[i]);
            }
        } else {
            let c = r.below(CHANNELS_NUMBER);
            if b.wants(3) || b.wants(4) {
                let (ch, url) = self.channel(c);
                b.str(3, ch);
                b.str(4, url);
            }
        }
        b.int(5, self.timestamp(n));
        if b.wants(6) {
            b.generate(6, &mut self.extra, |v| push_next_extra(v, r, 32, AVG_BID_BYTE_SIZE));
        }
    }

    fn gen_auction(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
        let event_id = n;
        let ts = self.timestamp(n);
        let id = last_base0_auction_id(event_id) as i64 + FIRST_AUCTION_ID;
        let seller = if r.below(HOT_SELLERS_RATIO_CFG) > 0 {
            (last_base0_person_id(event_id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            next_base0_person_id(event_id, r)
        } as i64
            + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + r.below(NUM_CATEGORIES) as i64;
        let initial_bid = next_price(r);
        let num_events_for_auctions = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let horizon = self.timestamp(n + num_events_for_auctions) - ts;
        let expires = ts + 1 + r.below((horizon * 2).max(1) as u64) as i64;
        let reserve = initial_bid + next_price(r);
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        push_next_string(&mut s, r, 20, b' ');
        let name_len = s.len();
        push_next_string(&mut s, r, 100, b' ');
        let (name, desc) = s.split_at(name_len);
        b.int(0, id);
        b.bytes(1, name);
        b.bytes(2, desc);
        b.int(3, initial_bid);
        b.int(4, reserve);
        b.int(5, ts);
        b.int(6, expires);
        b.int(7, seller);
        b.int(8, category);
        if b.wants(9) {
            let current = 8 + name.len() + desc.len() + 8 + 8 + 8 + 8 + 8;
            b.generate(9, &mut self.extra, |v| push_next_extra(v, r, current, AVG_AUCTION_BYTE_SIZE));
        }
        self.scratch = s;
    }

    fn gen_person(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
        let id = last_base0_person_id(n) as i64 + FIRST_PERSON_ID;
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.extend_from_slice(FIRST_NAMES[r.below(FIRST_NAMES.len() as u64) as usize].as_bytes());
        s.push(b' ');
        s.extend_from_slice(LAST_NAMES[r.below(LAST_NAMES.len() as u64) as usize].as_bytes());
        let name_end = s.len();
        push_next_string(&mut s, r, 7, b' ');
        s.push(b'@');
        push_next_string(&mut s, r, 5, b' ');
        s.extend_from_slice(b".com");
        let email_end = s.len();
        for i in 0..4 {
            if i > 0 {
                s.push(b' ');
            }
            let v = r.below(10_000) as u16;
            s.extend_from_slice(&[
                b'0' + (v / 1000) as u8,
                b'0' + (v / 100 % 10) as u8,
                b'0' + (v / 10 % 10) as u8,
                b'0' + (v % 10) as u8,
            ]);
        }
        let card_end = s.len();
        let city = US_CITIES[r.below(US_CITIES.len() as u64) as usize];
        let state = US_STATES[r.below(US_STATES.len() as u64) as usize];
        b.int(0, id);
        b.bytes(1, &s[..name_end]);
        b.bytes(2, &s[name_end..email_end]);
        b.bytes(3, &s[email_end..card_end]);
        b.str(4, city);
        b.str(5, state);
        b.int(6, self.timestamp(n));
        if b.wants(7) {
            let current = 8 + card_end + city.len() + state.len();
            b.generate(7, &mut self.extra, |v| push_next_extra(v, r, current, AVG_PERSON_BYTE_SIZE));
        }
        self.scratch = s;
    }

    /// Generates the next `count` events of split `split`.
    fn generate(&mut self, split: usize, count: usize) -> Result<RecordBatch, ConnectorError> {
        let Some(&sp) = self.splits.get(split) else {
            return Err(ConnectorError::Arrow { table: self.table.clone(), message: format!("no split {split}") });
        };
        let cols = self.cfg.kind.columns();
        let mut slots = vec![None; cols.len()];
        let (mut n_int, mut n_str) = (0, 0);
        for &g in &self.cfg.projection {
            if slots[g].is_none() {
                let is_str = cols[g].1 == ColKind::Utf8;
                slots[g] = Some((is_str, if is_str { n_str } else { n_int }));
                if is_str {
                    n_str += 1;
                } else {
                    n_int += 1;
                }
            }
        }
        let mut b = Buffers {
            ints: (0..n_int).map(|_| Vec::with_capacity(count)).collect(),
            strs: (0..n_str).map(|_| StrCol::with_capacity(count, count * 64)).collect(),
            slots,
        };
        let kind = self.cfg.kind;
        for j in 0..count as u64 {
            let k = sp.global(sp.produced + j);
            let n = kind.event_number(k);
            let mut r = SplitMix64::new(seed_of(&[self.cfg.seed, n]));
            match kind {
                Kind::Bid => self.gen_bid(&mut b, n, &mut r),
                Kind::Auction => self.gen_auction(&mut b, n, &mut r),
                Kind::Person => self.gen_person(&mut b, n, &mut r),
            }
        }
        let table = &self.table;
        let mut finished_strs: Vec<Option<ArrayRef>> = std::mem::take(&mut b.strs)
            .into_iter()
            .map(|s| {
                s.finish()
                    .map(|a| Some(Arc::new(a) as ArrayRef))
                    .map_err(|message| ConnectorError::Arrow { table: table.clone(), message })
            })
            .collect::<Result<_, _>>()?;
        let mut finished_ints: Vec<Option<Vec<i64>>> = b.ints.into_iter().map(Some).collect();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cfg.projection.len());
        let mut done: Vec<Option<ArrayRef>> = vec![None; cols.len()];
        for (f, &g) in self.schema.fields().iter().zip(&self.cfg.projection) {
            if let Some(a) = &done[g] {
                arrays.push(a.clone());
                continue;
            }
            let array: ArrayRef = match b.slots[g] {
                Some((true, s)) => {
                    finished_strs[s].take().unwrap_or_else(|| Arc::new(StringArray::from(Vec::<&str>::new())))
                }
                Some((false, s)) => {
                    let v = finished_ints[s].take().unwrap_or_default();
                    if cols[g].1 == ColKind::Timestamp {
                        Arc::new(TimestampMillisecondArray::from(v).with_data_type(f.data_type().clone()))
                    } else {
                        Arc::new(Int64Array::from(v))
                    }
                }
                None => continue,
            };
            done[g] = Some(array.clone());
            arrays.push(array);
        }
        if let Some(s) = self.splits.get_mut(split) {
            s.produced += count as u64;
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(count)),
        )
        .map_err(|e| ConnectorError::Arrow { table: self.table.clone(), message: e.to_string() })
    }
}

fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Person => 0,
        Kind::Auction => 1,
        Kind::Bid => 2,
    }
}

fn decode_split(blob: &[u8], kind: Kind) -> Result<StrideSplit, String> {
    let mut d = Dec::new(blob, TAG_NEXMARK)?;
    let code = d.u8()?;
    if code != kind_code(kind) {
        return Err(format!("a nexmark split of another table than '{}' (kind code {code})", kind.name()));
    }
    let s = StrideSplit::decode(&mut d)?;
    d.end()?;
    Ok(s)
}

impl NexmarkReader {
    /// `n` rows from several splits, in global order (see [`merge_plan`]).
    fn merged(&mut self, n: usize) -> Result<SourceEvent, ConnectorError> {
        let plan = merge_plan(&self.splits, n);
        let table = self.table.clone();
        merged_batch(plan, &table, |split, rows| self.generate(split, rows))
    }
}

impl SourceReader for NexmarkReader {
    fn poll(&mut self) -> Result<SourceEvent, ConnectorError> {
        // The next split with events left, in turn from the cursor.
        let len = self.splits.len();
        let Some(split) = (0..len).map(|k| (self.cursor + k) % len).find(|&s| self.splits[s].remaining() != Some(0))
        else {
            let bounded = self.cfg.number_of_events.is_some();
            return Ok(if bounded { SourceEvent::End } else { SourceEvent::Idle });
        };
        let remaining = if len > 1 { total_remaining(&self.splits) } else { self.splits[split].remaining() };
        let want = remaining.map_or(self.batch_size, |r| r.min(self.batch_size as u64) as usize);
        let n = match &mut self.throttle {
            Some(t) => t.acquire(want),
            None => want,
        };
        if n == 0 {
            return Ok(SourceEvent::Idle);
        }
        self.cursor = (split + 1) % len;
        if len == 1 {
            return Ok(SourceEvent::Batch(self.generate(split, n)?));
        }
        self.merged(n)
    }

    fn has_work(&self) -> bool {
        self.splits.iter().any(|s| s.remaining() != Some(0))
    }

    fn pending_records(&self) -> Option<u64> {
        self.splits.iter().map(StrideSplit::remaining).sum()
    }

    fn snapshot(&self) -> Result<Vec<Vec<u8>>, ConnectorError> {
        let code = kind_code(self.cfg.kind);
        Ok(self.splits.iter().map(|s| s.encode(Enc::new(TAG_NEXMARK).u8(code))).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Int64Type, Schema, TimestampMillisecondType};

    use super::*;
    use crate::{Role, validate_table};

    fn schema(kind: Kind) -> SchemaRef {
        Arc::new(Schema::new(
            kind.columns()
                .iter()
                .map(|(n, k)| {
                    Field::new(
                        *n,
                        match k {
                            ColKind::Int64 => DataType::Int64,
                            ColKind::Utf8 => DataType::Utf8,
                            ColKind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                        },
                        false,
                    )
                })
                .collect::<Vec<_>>(),
        ))
    }

    fn ctx(
        table: &str,
        schema: SchemaRef,
        opts: &[(&str, &str)],
        subtask: usize,
        p: usize,
        batch: usize,
    ) -> SourceContext {
        let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        options.insert("connector".into(), "nexmark".into());
        options.insert("nexmark.table".into(), table.into());
        SourceContext {
            table: "nx".into(),
            options,
            schema,
            subtask,
            parallelism: p,
            batch_size: batch,
            local_time_zone: "UTC".into(),
            restored_splits: None,
            s3: crate::S3Options::default(),
        }
    }

    fn drain(c: &SourceContext) -> Vec<RecordBatch> {
        let mut r = crate::create_source(c).unwrap();
        let mut out = Vec::new();
        loop {
            match r.poll().unwrap() {
                SourceEvent::Batch(b) => out.push(b),
                SourceEvent::Idle => {}
                SourceEvent::End => return out,
            }
        }
    }

    fn rows(batches: &[RecordBatch]) -> Vec<String> {
        let mut out = Vec::new();
        for b in batches {
            let cols: Vec<Vec<String>> = b
                .columns()
                .iter()
                .map(|c| {
                    arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                        .map(|f| (0..b.num_rows()).map(|r| f.value(r).to_string()).collect())
                        .unwrap()
                })
                .collect();
            for r in 0..b.num_rows() {
                out.push(cols.iter().map(|c| c[r].as_str()).collect::<Vec<_>>().join("|"));
            }
        }
        out
    }

    #[test]
    fn the_event_mix_is_1_person_3_auctions_46_bids() {
        assert_eq!((Kind::Person.count_in(50), Kind::Auction.count_in(50), Kind::Bid.count_in(50)), (1, 3, 46));
        assert_eq!(Kind::Bid.count_in(1000) + Kind::Auction.count_in(1000) + Kind::Person.count_in(1000), 1000);
        assert_eq!(Kind::Bid.count_in(3), 0);
        assert_eq!(Kind::Auction.count_in(3), 2);
        for kind in [Kind::Person, Kind::Auction, Kind::Bid] {
            for k in 0..500 {
                let n = kind.event_number(k);
                assert_eq!(kind_of_event(n), kind);
                assert_eq!(kind.count_in(n), k, "{kind:?} #{k} is event {n}");
            }
        }
        let opts = [("number-of-events", "1000")];
        let count =
            |t: &str, k: Kind| drain(&ctx(t, schema(k), &opts, 0, 1, 128)).iter().map(|b| b.num_rows()).sum::<usize>();
        assert_eq!(
            (count("person", Kind::Person), count("auction", Kind::Auction), count("bid", Kind::Bid)),
            (20, 60, 920)
        );
    }

    #[test]
    fn output_is_deterministic_across_runs_parallelism_and_batches() {
        let opts = [("number-of-events", "3000")];
        for (t, k) in [("bid", Kind::Bid), ("auction", Kind::Auction), ("person", Kind::Person)] {
            let one = rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 100)));
            assert_eq!(rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 100))), one);
            assert_eq!(rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 7))), one);
            let mut three: Vec<String> =
                (0..3).flat_map(|i| rows(&drain(&ctx(t, schema(k), &opts, i, 3, 50)))).collect();
            let mut sorted = one.clone();
            three.sort();
            sorted.sort();
            assert_eq!(three, sorted, "{t} differs at parallelism 3");
            let other = rows(&drain(&ctx(t, schema(k), &[("number-of-events", "3000"), ("seed", "9")], 0, 1, 100)));
            assert_ne!(other, one);
        }
    }

    #[test]
    fn events_follow_the_generator_model() {
        let b = drain(&ctx("bid", schema(Kind::Bid), &[("number-of-events", "50000")], 0, 1, 100_000));
        let b = &b[0];
        let auction = b.column(0).as_primitive::<Int64Type>();
        let bidder = b.column(1).as_primitive::<Int64Type>();
        let price = b.column(2).as_primitive::<Int64Type>();
        let channel = b.column(3).as_string::<i32>();
        let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
        let extra = b.column(6).as_string::<i32>();
        let mut hot = 0;
        for k in 0..b.num_rows() {
            let n = Kind::Bid.event_number(k as u64);
            // 10 000 events per second of event time from 2024-01-01.
            assert_eq!(ts.value(k), DEFAULT_BASE_TIME + (n / 10) as i64);
            let last_auction = last_base0_auction_id(n) as i64 + FIRST_AUCTION_ID;
            assert!(auction.value(k) >= FIRST_AUCTION_ID && auction.value(k) <= last_auction + AUCTION_ID_LEAD as i64);
            if auction.value(k) == (last_base0_auction_id(n) / 100 * 100) as i64 + FIRST_AUCTION_ID {
                hot += 1;
            }
            assert!(bidder.value(k) >= FIRST_PERSON_ID);
            assert!((100..=100_000_000).contains(&price.value(k)), "{}", price.value(k));
            let len = extra.value(k).len();
            assert!((54..=82).contains(&len), "extra of {len}");
        }
        // P(hot auction) = 1/2 plus the random picks that land on it.
        let share = hot as f64 / b.num_rows() as f64;
        assert!((0.48..0.6).contains(&share), "hot share {share}");
        let google = channel.iter().filter(|c| *c == Some("Google")).count() as f64 / b.num_rows() as f64;
        assert!((0.1..0.15).contains(&google), "Google share {google}");
        let persons = drain(&ctx("person", schema(Kind::Person), &[("number-of-events", "500")], 0, 1, 100));
        let ids: Vec<i64> = persons[0].column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(ids, (1000..1010).collect::<Vec<_>>());
        let card = persons[0].column(3).as_string::<i32>().value(0);
        assert!(card.len() == 19 && card.split(' ').all(|g| g.len() == 4), "{card}");
        let auctions = drain(&ctx("auction", schema(Kind::Auction), &[("number-of-events", "100")], 0, 1, 100));
        let a = &auctions[0];
        let ids: Vec<i64> = a.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(ids, vec![1000, 1001, 1002, 1003, 1004, 1005]);
        let (dt, exp) = (
            a.column(5).as_primitive::<TimestampMillisecondType>(),
            a.column(6).as_primitive::<TimestampMillisecondType>(),
        );
        assert!((0..a.num_rows()).all(|r| exp.value(r) > dt.value(r)));
        let (ib, rs) = (a.column(3).as_primitive::<Int64Type>(), a.column(4).as_primitive::<Int64Type>());
        assert!((0..a.num_rows()).all(|r| rs.value(r) >= ib.value(r)));
    }

    #[test]
    fn declared_columns_are_matched_case_insensitively_in_any_order() {
        let s = Arc::new(Schema::new(vec![
            Field::new("DATETIME", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new("price", DataType::Int64, false),
        ]));
        let full = drain(&ctx("bid", schema(Kind::Bid), &[("number-of-events", "200")], 0, 1, 1000));
        let part = drain(&ctx("bid", s, &[("number-of-events", "200")], 0, 1, 1000));
        assert_eq!(part[0].num_columns(), 2);
        assert_eq!(
            part[0].column(1).as_primitive::<Int64Type>().values(),
            full[0].column(2).as_primitive::<Int64Type>().values()
        );
        assert_eq!(
            part[0].column(0).as_primitive::<TimestampMillisecondType>().values(),
            full[0].column(5).as_primitive::<TimestampMillisecondType>().values()
        );
    }

    #[test]
    fn bad_tables_are_clear_errors() {
        let opts = |t: &str| -> BTreeMap<String, String> {
            [("connector", "nexmark"), ("nexmark.table", t)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = Arc::new(Schema::new(vec![Field::new("bogus", DataType::Int64, false)]));
        let e = validate_table("bids", &opts("bid"), &s, Role::Source).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "table `bids`: column `bogus` is not a column of nexmark table 'bid'; its columns are: auction BIGINT"
            ),
            "{e}"
        );
        let s = Arc::new(Schema::new(vec![Field::new("price", DataType::Int32, false)]));
        let e = validate_table("bids", &opts("bid"), &s, Role::Source).unwrap_err().to_string();
        assert_eq!(e, "table `bids`: column `price` has type INT, but nexmark table 'bid' makes it BIGINT");
        let e = validate_table("x", &opts("bids"), &schema(Kind::Bid), Role::Source).unwrap_err().to_string();
        assert_eq!(e, "table `x`: option 'nexmark.table' = 'bids' is invalid: expected 'bid', 'auction' or 'person'");
    }
}
