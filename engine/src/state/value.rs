//! One SQL value as changelog operators keep it in state: totally ordered,
//! hashable, encodable with the state codec, and convertible from and to Arrow
//! cells of the engine's column types.
//!
//! | SQL type | Arrow type | value |
//! | --- | --- | --- |
//! | TINYINT … BIGINT, DATE, TIME, TIMESTAMP(_LTZ) | Int8 … Int64, Date32, Time*, Timestamp | `I64` |
//! | FLOAT, DOUBLE | Float32, Float64 | `F64` (ordered by `total_cmp`) |
//! | DECIMAL | Decimal128 | `I128` (unscaled, as a [`Wide`]) |
//! | STRING | Utf8 | `Str` |
//! | BOOLEAN | Boolean | `Bool` |
//! | ARRAY<T> | List | `List` of T's values |
//! | MAP<K, V> | Map | `Map` of (K, V) values, in stored order |
//!
//! `Null` sorts first, as in Flink's ascending order with nulls first.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Decimal128Array, Decimal128Builder, Float64Array,
    Int64Array, ListArray, MapArray, PrimitiveBuilder, StringArray, StringBuilder, StructArray, new_null_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};

use super::codec::{Reader, Writer};
use crate::error::OpError;

#[derive(Debug, Clone)]
pub enum Val {
    Null,
    I64(i64),
    F64(f64),
    I128(Wide),
    Str(Box<str>),
    Bool(bool),
    List(Arc<[Val]>),
    Map(Arc<[(Val, Val)]>),
}

/// An `i128` held as two 8-byte halves: an `i128` is 16-byte aligned, and
/// would make every [`Val`] (a row of state holds one per column) take 32
/// bytes instead of 24.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Wide([u64; 2]);

impl Wide {
    pub fn get(self) -> i128 {
        ((self.0[1] as u128) << 64 | self.0[0] as u128) as i128
    }
}

impl From<i128> for Wide {
    fn from(v: i128) -> Self {
        Wide([v as u64, ((v as u128) >> 64) as u64])
    }
}

impl std::fmt::Debug for Wide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// The heap bytes a block of `n` bytes takes: allocators hand out size
/// classes about 16 bytes apart at the sizes state uses.
pub fn block(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// The heap bytes of a row of values held in one block (an `Arc<[Val]>`, with
/// its two counts) and the values' own blocks.
pub fn row_heap(row: &[Val]) -> usize {
    block(16 + std::mem::size_of_val(row)) + row.iter().map(Val::heap_size).sum::<usize>()
}

impl Val {
    /// The heap bytes the value holds besides itself.
    pub fn heap_size(&self) -> usize {
        match self {
            Val::Str(s) => block(s.len()),
            Val::List(items) => row_heap(items),
            Val::Map(entries) => {
                block(16 + entries.len() * 2 * std::mem::size_of::<Val>())
                    + entries.iter().map(|(k, v)| k.heap_size() + v.heap_size()).sum::<usize>()
            }
            _ => 0,
        }
    }

    pub(crate) fn rank(&self) -> u8 {
        match self {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::I64(_) => 2,
            Val::F64(_) => 3,
            Val::I128(_) => 4,
            Val::Str(_) => 5,
            Val::List(_) => 6,
            Val::Map(_) => 7,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u8(self.rank());
        match self {
            Val::Null => {}
            Val::Bool(b) => w.bool(*b),
            Val::I64(v) => w.i64(*v),
            Val::F64(v) => w.f64(*v),
            Val::I128(v) => w.i128(v.get()),
            Val::Str(s) => w.str(s),
            Val::List(items) => {
                w.u32(items.len() as u32);
                items.iter().for_each(|v| v.encode(w));
            }
            Val::Map(entries) => {
                w.u32(entries.len() as u32);
                entries.iter().for_each(|(k, v)| {
                    k.encode(w);
                    v.encode(w);
                });
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Val, OpError> {
        Ok(match r.u8()? {
            0 => Val::Null,
            1 => Val::Bool(r.bool()?),
            2 => Val::I64(r.i64()?),
            3 => Val::F64(r.f64()?),
            4 => Val::I128(r.i128()?.into()),
            5 => Val::Str(r.str()?.into_boxed_str()),
            6 => {
                let n = r.u32()? as usize;
                Val::List((0..n).map(|_| Val::decode(r)).collect::<Result<Vec<_>, _>>()?.into())
            }
            7 => {
                let n = r.u32()? as usize;
                Val::Map(
                    (0..n).map(|_| Ok((Val::decode(r)?, Val::decode(r)?))).collect::<Result<Vec<_>, OpError>>()?.into(),
                )
            }
            t => return Err(OpError::Other(format!("state holds an unknown value tag {t}"))),
        })
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Val {}

impl PartialOrd for Val {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Val {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Val::I64(a), Val::I64(b)) => a.cmp(b),
            (Val::F64(a), Val::F64(b)) => a.total_cmp(b),
            (Val::I128(a), Val::I128(b)) => a.get().cmp(&b.get()),
            (Val::Str(a), Val::Str(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::List(a), Val::List(b)) => a.iter().cmp(b.iter()),
            (Val::Map(a), Val::Map(b)) => a.iter().cmp(b.iter()),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Hash for Val {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Val::Null => {}
            Val::Bool(b) => b.hash(state),
            Val::I64(v) => v.hash(state),
            Val::F64(v) => v.to_bits().hash(state),
            Val::I128(v) => v.get().hash(state),
            Val::Str(s) => s.hash(state),
            Val::List(items) => items.hash(state),
            Val::Map(entries) => entries.hash(state),
        }
    }
}

/// A column read as values.
pub fn column_values(col: &ArrayRef) -> Result<Vec<Val>, OpError> {
    let n = col.len();
    let nulls = |i: usize| col.is_null(i);
    Ok(match col.data_type() {
        DataType::List(_) => {
            let list = col.as_list::<i32>();
            (0..n)
                .map(|i| if nulls(i) { Ok(Val::Null) } else { Ok(Val::List(column_values(&list.value(i))?.into())) })
                .collect::<Result<_, OpError>>()?
        }
        DataType::Map(_, _) => {
            let map = col.as_map();
            let (keys, values) = (column_values(map.keys())?, column_values(map.values())?);
            let offsets = map.value_offsets();
            (0..n)
                .map(|i| {
                    if nulls(i) {
                        return Val::Null;
                    }
                    let (a, b) = (offsets[i] as usize, offsets[i + 1] as usize);
                    Val::Map(keys[a..b].iter().cloned().zip(values[a..b].iter().cloned()).collect::<Vec<_>>().into())
                })
                .collect()
        }
        _ => {
            let reader = ColumnReader::new(col)?;
            (0..n).map(|i| reader.value(i)).collect::<Result<_, _>>()?
        }
    })
}

/// A column read one value at a time: cast once to the array type its values
/// are read from, then read at any row (an operator that keeps few of the
/// rows it sees converts only those).
pub struct ColumnReader {
    nulls: Option<NullBuffer>,
    col: Typed,
}

/// A column as the array type its values are read from, downcast once.
enum Typed {
    Null,
    Bool(BooleanArray),
    F64(Float64Array),
    I128(Decimal128Array),
    Str(StringArray),
    I64(Int64Array),
    /// Lists and maps: the row's slice, through [`column_values`].
    Nested(ArrayRef),
}

impl ColumnReader {
    pub fn new(col: &ArrayRef) -> Result<Self, OpError> {
        let col = match col.data_type() {
            DataType::Float32 => cast(col, &DataType::Float64)?,
            DataType::LargeUtf8 | DataType::Utf8View => cast(col, &DataType::Utf8)?,
            DataType::Timestamp(_, Some(_)) => {
                // The instant, whatever the zone: values of one column share it.
                let c = cast(col, &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None))?;
                cast(&c, &DataType::Int64)?
            }
            t if t != &DataType::Int64 && (t.is_integer() || t.is_temporal()) => cast(col, &DataType::Int64)?,
            _ => col.clone(),
        };
        let typed = match col.data_type() {
            DataType::Null => Typed::Null,
            DataType::Boolean => Typed::Bool(col.as_boolean().clone()),
            DataType::Float64 => Typed::F64(col.as_primitive::<Float64Type>().clone()),
            DataType::Decimal128(_, _) => Typed::I128(col.as_primitive::<Decimal128Type>().clone()),
            DataType::Utf8 => Typed::Str(col.as_string::<i32>().clone()),
            DataType::Int64 => Typed::I64(col.as_primitive::<Int64Type>().clone()),
            DataType::List(_) | DataType::Map(_, _) => Typed::Nested(col.clone()),
            other => return Err(OpError::Other(format!("a changelog operator cannot keep {other} values in state"))),
        };
        Ok(ColumnReader { nulls: col.logical_nulls(), col: typed })
    }

    fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(i))
    }

    /// Writes the value at row `i` as [`Val::encode`] writes it, without
    /// making a value first (no string is copied to the heap).
    pub fn encode(&self, i: usize, w: &mut Writer) -> Result<(), OpError> {
        if self.is_null(i) {
            w.u8(0);
            return Ok(());
        }
        match &self.col {
            Typed::Null => w.u8(0),
            Typed::Bool(a) => {
                w.u8(1);
                w.bool(a.value(i));
            }
            Typed::I64(a) => {
                w.u8(2);
                w.i64(a.value(i));
            }
            Typed::F64(a) => {
                w.u8(3);
                w.f64(a.value(i));
            }
            Typed::I128(a) => {
                w.u8(4);
                w.i128(a.value(i));
            }
            Typed::Str(a) => {
                w.u8(5);
                w.str(a.value(i));
            }
            Typed::Nested(_) => self.value(i)?.encode(w),
        }
        Ok(())
    }

    /// The value at row `i`.
    pub fn value(&self, i: usize) -> Result<Val, OpError> {
        if self.is_null(i) {
            return Ok(Val::Null);
        }
        Ok(match &self.col {
            Typed::Null => Val::Null,
            Typed::Bool(a) => Val::Bool(a.value(i)),
            Typed::F64(a) => Val::F64(a.value(i)),
            Typed::I128(a) => Val::I128(a.value(i).into()),
            Typed::Str(a) => Val::Str(a.value(i).into()),
            Typed::I64(a) => Val::I64(a.value(i)),
            Typed::Nested(a) => column_values(&a.slice(i, 1))?.into_iter().next().unwrap_or(Val::Null),
        })
    }
}

/// Values of one column as an Arrow array of `data_type`.
pub fn to_array<'a>(data_type: &DataType, values: impl Iterator<Item = &'a Val> + Clone) -> Result<ArrayRef, OpError> {
    let mismatch = |v: &Val| OpError::Other(format!("state value {v:?} is not a {data_type}"));
    // Builders sized up front: growing them copies what they hold.
    let n = values.size_hint().0;
    Ok(match data_type {
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    Val::Bool(x) => b.append_value(*x),
                    o => return Err(mismatch(o)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Float32 | DataType::Float64 => {
            let mut b = PrimitiveBuilder::<Float64Type>::with_capacity(n);
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    Val::F64(x) => b.append_value(*x),
                    o => return Err(mismatch(o)),
                }
            }
            cast(&(Arc::new(b.finish()) as ArrayRef), data_type)?
        }
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::new().with_precision_and_scale(*p, *s)?;
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    Val::I128(x) => b.append_value(x.get()),
                    o => return Err(mismatch(o)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Utf8 => {
            // The strings' bytes counted first: a value buffer grown as it
            // fills is copied at each doubling (a fifth of a Top-N's time).
            let bytes = values.clone().map(|v| if let Val::Str(x) = v { x.len() } else { 0 }).sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    Val::Str(x) => b.append_value(x),
                    o => return Err(mismatch(o)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Null => new_null_array(&DataType::Null, values.count()),
        DataType::List(field) => {
            let (mut flat, mut offsets, mut valid) = (Vec::new(), vec![0i32], Vec::new());
            for v in values {
                match v {
                    Val::Null => valid.push(false),
                    Val::List(items) => {
                        flat.extend(items.iter());
                        valid.push(true);
                    }
                    o => return Err(mismatch(o)),
                }
                offsets.push(flat.len() as i32);
            }
            let items = to_array(field.data_type(), flat.into_iter())?;
            Arc::new(ListArray::try_new(
                field.clone(),
                OffsetBuffer::new(offsets.into()),
                items,
                Some(NullBuffer::from(valid)),
            )?)
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(OpError::Other(format!("a map type whose entries are {}", entries.data_type())));
            };
            let (mut keys, mut vals, mut offsets, mut valid) = (Vec::new(), Vec::new(), vec![0i32], Vec::new());
            for v in values {
                match v {
                    Val::Null => valid.push(false),
                    Val::Map(pairs) => {
                        for (k, x) in pairs.iter() {
                            keys.push(k);
                            vals.push(x);
                        }
                        valid.push(true);
                    }
                    o => return Err(mismatch(o)),
                }
                offsets.push(keys.len() as i32);
            }
            let (Some(kf), Some(vf)) = (kv.first(), kv.get(1)) else {
                return Err(OpError::Other("a map type without key and value".into()));
            };
            let k = to_array(kf.data_type(), keys.into_iter())?;
            let x = to_array(vf.data_type(), vals.into_iter())?;
            let structs = StructArray::try_new(kv.clone(), vec![k, x], None)?;
            Arc::new(MapArray::try_new(
                entries.clone(),
                OffsetBuffer::new(offsets.into()),
                structs,
                Some(NullBuffer::from(valid)),
                *sorted,
            )?)
        }
        t => {
            let mut b = PrimitiveBuilder::<Int64Type>::with_capacity(n);
            for v in values {
                match v {
                    Val::Null => b.append_null(),
                    Val::I64(x) => b.append_value(*x),
                    o => return Err(mismatch(o)),
                }
            }
            finish_i64(Arc::new(b.finish()), t)?
        }
    })
}

/// An `Int64` column of values as a column of `t` (an integer, time or
/// timestamp type, which values hold as `i64`).
pub fn finish_i64(a: ArrayRef, t: &DataType) -> Result<ArrayRef, OpError> {
    Ok(match t {
        // Int64 → Timestamp(ms, tz) reinterprets, keeping the zone.
        DataType::Timestamp(unit, Some(tz)) => {
            let naive = cast(&a, &DataType::Timestamp(*unit, None))?;
            cast(&naive, &DataType::Timestamp(*unit, Some(tz.clone())))?
        }
        _ => cast(&a, t)?,
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};

    use super::*;

    #[test]
    fn arrays_and_maps_round_trip_through_values_and_the_codec() {
        use arrow::array::{Int32Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder};
        let mut l = ListBuilder::new(StringBuilder::new());
        l.append_value([Some("a"), None]);
        l.append_null();
        l.append_value::<[Option<&str>; 0], _>([]);
        let mut m = MapBuilder::new(
            Some(MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() }),
            StringBuilder::new(),
            Int32Builder::new(),
        );
        m.keys().append_value("x");
        m.values().append_value(1);
        m.keys().append_value("y");
        m.values().append_null();
        m.append(true).unwrap();
        m.append(false).unwrap();
        m.append(true).unwrap();
        let cols: Vec<ArrayRef> = vec![Arc::new(l.finish()), Arc::new(m.finish())];
        for col in cols {
            let vals = column_values(&col).unwrap();
            assert_eq!(read_one_by_one(&col), vals, "a column reader reads what column_values does");
            assert!(vals[0] != Val::Null && vals[1] == Val::Null && vals[2] != Val::Null, "{vals:?}");
            let mut w = Writer::new();
            vals.iter().for_each(|v| v.encode(&mut w));
            let mut r = Reader::new(&w.buf);
            let back: Vec<Val> = (0..vals.len()).map(|_| Val::decode(&mut r).unwrap()).collect();
            assert_eq!(back, vals);
            let arr = to_array(col.data_type(), back.iter()).unwrap();
            assert_eq!(arr.as_ref(), col.as_ref());
        }
    }

    /// A column's values as a [`ColumnReader`] reads them, row by row.
    fn read_one_by_one(col: &ArrayRef) -> Vec<Val> {
        let reader = ColumnReader::new(col).unwrap();
        (0..col.len()).map(|i| reader.value(i).unwrap()).collect()
    }

    #[test]
    fn a_column_reader_reads_each_row_as_column_values_does() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::Int32Array::from(vec![Some(7), None, Some(-2)])),
            Arc::new(arrow::array::Float32Array::from(vec![Some(0.25), None, Some(-1.0)])),
            Arc::new(arrow::array::LargeStringArray::from(vec![Some("long"), None, Some("")])),
            Arc::new(arrow::array::BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![Some(5), None, Some(-7)])),
            Arc::new(TimestampMillisecondArray::from(vec![Some(1_000), None, Some(2)]).with_timezone("+01:00")),
        ];
        for col in cols {
            let vals = column_values(&col).unwrap();
            assert_eq!(vals[1], Val::Null);
            assert_eq!(read_one_by_one(&col), vals, "{}", col.data_type());
        }
    }

    #[test]
    fn columns_round_trip_through_values_and_the_codec() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            Arc::new(Float64Array::from(vec![Some(1.5), Some(f64::NAN), None])),
            Arc::new(Decimal128Array::from(vec![Some(123), None, Some(-1)]).with_precision_and_scale(10, 2).unwrap()),
            Arc::new(TimestampMillisecondArray::from(vec![Some(1_000), None, Some(2)]).with_timezone("UTC")),
        ];
        for col in cols {
            let vals = column_values(&col).unwrap();
            assert_eq!(read_one_by_one(&col), vals, "{}", col.data_type());
            let mut w = Writer::new();
            vals.iter().for_each(|v| v.encode(&mut w));
            let mut r = Reader::new(&w.buf);
            let back: Vec<Val> = (0..vals.len()).map(|_| Val::decode(&mut r).unwrap()).collect();
            assert_eq!(back, vals);
            let arr = to_array(col.data_type(), back.iter()).unwrap();
            assert_eq!(arr.data_type(), col.data_type());
            assert_eq!(column_values(&arr).unwrap(), vals);
        }
        assert!(Val::Null < Val::I64(i64::MIN));
        assert!(Val::List(vec![Val::I64(1)].into()) < Val::List(vec![Val::I64(1), Val::Null].into()));
        assert!(Val::F64(-0.5) < Val::F64(0.5));
    }

    #[test]
    fn a_value_takes_24_bytes_and_a_decimal_keeps_every_bit_and_its_order() {
        assert_eq!(std::mem::size_of::<Val>(), 24);
        let xs = [i128::MIN, i128::MIN + 1, -(1 << 64), -1, 0, 1, u64::MAX as i128, 1 << 64, i128::MAX];
        for x in xs {
            assert_eq!(Wide::from(x).get(), x);
        }
        let vals: Vec<Val> = xs.iter().map(|x| Val::I128((*x).into())).collect();
        assert!(vals.windows(2).all(|w| w[0] < w[1]), "{vals:?}");
    }
}
