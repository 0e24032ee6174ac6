//! The generator of event fields, after nexmark-flink's `NexmarkGenerator`
//! and its model generators (from Apache Beam): ids, prices, channels,
//! names and padding drawn as the reference does, written column-wise into
//! [`Buffers`] with no per-row allocation.

use arrow::array::StringArray;
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};

use super::model::{AUCTION_PROPORTION, Kind, PERSON_PROPORTION, TOTAL_PROPORTION};
use crate::BatchError;
use crate::rng::{SplitMix64, below, seed_of};

pub(super) const FIRST_AUCTION_ID: i64 = 1000;
pub(super) const FIRST_PERSON_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
pub(super) const AUCTION_ID_LEAD: u64 = 10;
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

const HOT_CHANNELS_RATIO: u64 = 2;
const CHANNELS_NUMBER: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];

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

pub(super) fn last_base0_auction_id(event_id: u64) -> u64 {
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

/// Makes the fields of events, with the caches and scratch space that spare
/// allocations.
pub(super) struct EventGenerator {
    seed: u64,
    base_time: i64,
    inter_event_delay_us: f64,
    hot_urls: [String; 4],
    channel_cache: Vec<Option<(String, String)>>,
    scratch: Vec<u8>,
    extra: Vec<u8>,
}

impl EventGenerator {
    pub(super) fn new(seed: u64, base_time: i64, inter_event_delay_us: f64) -> Self {
        let mut r = SplitMix64::new(seed_of(&[seed, 0x4855_5253]));
        let hot_urls = [base_url(&mut r), base_url(&mut r), base_url(&mut r), base_url(&mut r)];
        EventGenerator {
            seed,
            base_time,
            inter_event_delay_us,
            hot_urls,
            channel_cache: Vec::new(),
            scratch: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Appends the fields of event `n`, of kind `kind`, to `b`. Its draws come
    /// from a PRNG seeded with (seed, `n`) alone, so an event is the same
    /// whichever subtask makes it and in whatever batch.
    pub(super) fn event(&mut self, kind: Kind, b: &mut Buffers, n: u64) {
        let mut r = SplitMix64::new(seed_of(&[self.seed, n]));
        match kind {
            Kind::Bid => self.bid(b, n, &mut r),
            Kind::Auction => self.auction(b, n, &mut r),
            Kind::Person => self.person(b, n, &mut r),
        }
    }

    fn timestamp(&self, event_number: u64) -> i64 {
        self.base_time + (event_number as f64 * self.inter_event_delay_us) as i64 / 1000
    }

    fn channel(&mut self, n: u64) -> (&str, &str) {
        if self.channel_cache.is_empty() {
            self.channel_cache = vec![None; CHANNELS_NUMBER as usize];
        }
        let seed = self.seed;
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

    fn bid(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
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

    fn auction(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
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

    fn person(&mut self, b: &mut Buffers, n: u64, r: &mut SplitMix64) {
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
}

// ---------------------------------------------------------------------------

/// Column buffers for one batch; only the generated columns that are
/// declared are filled.
pub(super) struct Buffers {
    pub(super) ints: Vec<Vec<i64>>,
    pub(super) strs: Vec<StrCol>,
    /// Generated column index → (is string, slot in ints/strs), or None if not wanted.
    pub(super) slots: Vec<Option<(bool, usize)>>,
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
pub(super) struct StrCol {
    values: Vec<u8>,
    offsets: Vec<i32>,
}

impl StrCol {
    pub(super) fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol { values: Vec::with_capacity(bytes), offsets }
    }

    #[inline]
    fn push(&mut self, v: &[u8]) {
        self.values.extend_from_slice(v);
        self.offsets.push(self.values.len() as i32);
    }

    pub(super) fn finish(self) -> Result<StringArray, BatchError> {
        if self.values.len() > i32::MAX as usize {
            return Err(BatchError::NexmarkStringsTooLarge);
        }
        StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(self.offsets)), Buffer::from_vec(self.values), None)
            .map_err(BatchError::from)
    }
}
