//! The range of a Top-N: bounds on the row number from the conditions of the
//! WHERE that reads it (`rn <= N`, `rn < N`, `rn = N`, `rn >= M`, `rn > M`,
//! `rn BETWEEN M AND N`, either way round).

use datafusion_common::ScalarValue;
use datafusion_expr::{BinaryExpr, Operator};

use crate::expr::Expr;

fn literal_u64(e: &Expr) -> Option<i128> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int8(Some(x)) => Some(*x as i128),
            ScalarValue::Int16(Some(x)) => Some(*x as i128),
            ScalarValue::Int32(Some(x)) => Some(*x as i128),
            ScalarValue::Int64(Some(x)) => Some(*x as i128),
            ScalarValue::UInt8(Some(x)) => Some(*x as i128),
            ScalarValue::UInt16(Some(x)) => Some(*x as i128),
            ScalarValue::UInt32(Some(x)) => Some(*x as i128),
            ScalarValue::UInt64(Some(x)) => Some(*x as i128),
            _ => None,
        },
        Expr::Cast(c) => literal_u64(&c.expr),
        Expr::TryCast(c) => literal_u64(&c.expr),
        _ => None,
    }
}

fn strip_casts(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip_casts(&c.expr),
        Expr::TryCast(c) => strip_casts(&c.expr),
        _ => e,
    }
}

/// Bounds on the row number: `(lowest, highest)`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bounds {
    pub lo: i128,
    pub hi: Option<i128>,
}

/// Narrows `b` by one conjunct if it is a bound on the row number `is_rank`
/// recognizes: `rn <= N`, `rn < N`, `rn = N`, `rn >= M`, `rn > M` (either way
/// round) or `rn BETWEEN M AND N`. `None`: not such a bound.
pub(super) fn narrow(b: Bounds, conj: &Expr, is_rank: &dyn Fn(&Expr) -> bool) -> Option<Bounds> {
    let mut b = b;
    let hi = |n: i128, b: &mut Bounds| b.hi = Some(b.hi.map_or(n, |h| h.min(n)));
    match conj {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (l, r) = (strip_casts(left), strip_casts(right));
            let (op, n) = if is_rank(l) {
                (*op, literal_u64(r)?)
            } else if is_rank(r) {
                (op.swap()?, literal_u64(l)?)
            } else {
                return None;
            };
            match op {
                Operator::LtEq => hi(n, &mut b),
                Operator::Lt => hi(n - 1, &mut b),
                Operator::Eq => {
                    hi(n, &mut b);
                    b.lo = b.lo.max(n);
                }
                Operator::GtEq => b.lo = b.lo.max(n),
                Operator::Gt => b.lo = b.lo.max(n + 1),
                _ => return None,
            }
            Some(b)
        }
        Expr::Between(between) if !between.negated && is_rank(strip_casts(&between.expr)) => {
            let (lo, h) = (literal_u64(&between.low)?, literal_u64(&between.high)?);
            hi(h, &mut b);
            b.lo = b.lo.max(lo);
            Some(b)
        }
        _ => None,
    }
}
