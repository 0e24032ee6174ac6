//! The Nexmark model: the three kinds of events, their share of the event
//! stream (1 person, 3 auctions, 46 bids in every 50 events) and the columns
//! of their tables, in nexmark-flink's order.

pub(super) const PERSON_PROPORTION: u64 = 1;
pub(super) const AUCTION_PROPORTION: u64 = 3;
pub(super) const BID_PROPORTION: u64 = 46;
pub(super) const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Person,
    Auction,
    Bid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColKind {
    Int64,
    Utf8,
    Timestamp,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }

    /// The table's columns in nexmark-flink's order.
    pub(super) fn columns(self) -> &'static [(&'static str, ColKind)] {
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
    pub(super) fn slot(self) -> (u64, u64) {
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
