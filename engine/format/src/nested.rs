//! ARRAY and MAP values as Flink's print sink shows them: `Row.toString()`
//! of the external values, so an ARRAY is Java's `Arrays.toString`
//! (`[1, 2, null]`) and a MAP is `HashMap.toString` (`{a=1, b=2}`).
//!
//! Flink converts a MAP to a fresh `java.util.HashMap` before printing it, so
//! its entries print in that map's iteration order: by bucket
//! (`(h ^ h >>> 16) & (capacity - 1)` of the key's Java `hashCode`), then in
//! insertion order within a bucket. [`java_map_order`] reproduces it for keys
//! whose Java hash Sluice knows (STRING, INT, BIGINT, BOOLEAN); other keys keep
//! their stored order.
//!
//! A MAP that Flink's json format reads is a `HashMap` of its internal
//! strings, whose hash is Flink's `MurmurHashUtil.hashBytes` of the UTF-8
//! bytes: that map's order is the MAP's stored order, which UNNEST follows and
//! which breaks ties between keys of one bucket when printing.
//! [`flink_string_map_order`] gives it, so readers can store entries in it.

use arrow::array::{Array, AsArray, MapArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMillisecondType,
};

use crate::number::{push_big_decimal, push_i64, push_java_double, push_java_float};
use crate::time::{push_instant, push_local_date, push_local_date_time};

/// Appends the `Row.toString()` text of the value at `row` of `arr` (any
/// supported type, nested or not); NULL is `null`.
pub fn push_row_string(out: &mut Vec<u8>, arr: &dyn Array, row: usize, scratch: &mut String) {
    if arr.is_null(row) {
        out.extend_from_slice(b"null");
        return;
    }
    match arr.data_type() {
        DataType::Boolean => out.extend_from_slice(if arr.as_boolean().value(row) { b"true" } else { b"false" }),
        DataType::Int8 => push_i64(out, i64::from(arr.as_primitive::<Int8Type>().value(row))),
        DataType::Int16 => push_i64(out, i64::from(arr.as_primitive::<Int16Type>().value(row))),
        DataType::Int32 => push_i64(out, i64::from(arr.as_primitive::<Int32Type>().value(row))),
        DataType::Int64 => push_i64(out, arr.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => push_java_float(out, arr.as_primitive::<Float32Type>().value(row), scratch),
        DataType::Float64 => push_java_double(out, arr.as_primitive::<Float64Type>().value(row), scratch),
        DataType::Decimal128(_, s) => {
            push_big_decimal(out, arr.as_primitive::<Decimal128Type>().value(row), i32::from(*s))
        }
        DataType::Utf8 => out.extend_from_slice(arr.as_string::<i32>().value(row).as_bytes()),
        DataType::Date32 => push_local_date(out, arr.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(_, None) => {
            push_local_date_time(out, arr.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Timestamp(_, Some(_)) => push_instant(out, arr.as_primitive::<TimestampMillisecondType>().value(row)),
        DataType::List(_) => {
            let items = arr.as_list::<i32>().value(row);
            out.push(b'[');
            for i in 0..items.len() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_row_string(out, items.as_ref(), i, scratch);
            }
            out.push(b']');
        }
        DataType::Map(_, _) => {
            let map = arr.as_map();
            let (keys, values) = entries(map, row);
            out.push(b'{');
            for (n, i) in java_map_order(keys.as_ref()).into_iter().enumerate() {
                if n > 0 {
                    out.extend_from_slice(b", ");
                }
                push_row_string(out, keys.as_ref(), i, scratch);
                out.push(b'=');
                push_row_string(out, values.as_ref(), i, scratch);
            }
            out.push(b'}');
        }
        other => out.extend_from_slice(format!("<{other}>").as_bytes()),
    }
}

/// The keys and values of the map at `row`.
pub fn entries(map: &MapArray, row: usize) -> (arrow::array::ArrayRef, arrow::array::ArrayRef) {
    let (start, end) = (map.value_offsets()[row] as usize, map.value_offsets()[row + 1] as usize);
    (map.keys().slice(start, end - start), map.values().slice(start, end - start))
}

/// Java's `hashCode` of the key at `i`, for the key types Sluice knows it of.
fn java_hash(keys: &dyn Array, i: usize) -> Option<i32> {
    if keys.is_null(i) {
        return Some(0);
    }
    Some(match keys.data_type() {
        DataType::Utf8 => keys
            .as_string::<i32>()
            .value(i)
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c))),
        // Byte.hashCode and Short.hashCode are the value.
        DataType::Int8 => i32::from(keys.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => i32::from(keys.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => keys.as_primitive::<Int32Type>().value(i),
        DataType::Int64 => {
            let v = keys.as_primitive::<Int64Type>().value(i);
            (v ^ ((v as u64) >> 32) as i64) as i32
        }
        DataType::Boolean => {
            if keys.as_boolean().value(i) {
                1231
            } else {
                1237
            }
        }
        _ => return None,
    })
}

/// The positions of `keys` in the iteration order of a `java.util.HashMap`
/// (default capacity and load factor) they were put into in order.
pub fn java_map_order(keys: &dyn Array) -> Vec<usize> {
    let n = keys.len();
    match (0..n).map(|i| java_hash(keys, i)).collect::<Option<Vec<i32>>>() {
        Some(hashes) => hash_map_order(&hashes),
        None => (0..n).collect(),
    }
}

/// Flink's `MurmurHashUtil.hashBytes` (seed 42) of `b`: murmur3 over 4-byte
/// little-endian words, then each remaining (signed) byte mixed as a word.
fn flink_murmur(b: &[u8]) -> i32 {
    let mix_k1 = |k: u32| k.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593);
    let mix_h1 = |h: u32, k: u32| (h ^ k).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    let aligned = b.len() - b.len() % 4;
    let mut h = 42u32;
    for w in b[..aligned].chunks_exact(4) {
        h = mix_h1(h, mix_k1(u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
    }
    for &x in &b[aligned..] {
        h = mix_h1(h, mix_k1(i32::from(x as i8) as u32));
    }
    h ^= b.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// The order of `keys`, put in this order into a `java.util.HashMap` of
/// Flink's internal strings (as Flink's json format reads a MAP<STRING, _>).
pub fn flink_string_map_order(keys: &[&str]) -> Vec<usize> {
    hash_map_order(&keys.iter().map(|k| flink_murmur(k.as_bytes())).collect::<Vec<_>>())
}

/// The iteration order of a `java.util.HashMap` (default capacity and load
/// factor) of keys with these hash codes, put in order.
fn hash_map_order(hashes: &[i32]) -> Vec<usize> {
    let n = hashes.len();
    // The table grows (doubling from 16) while size exceeds 3/4 of it.
    let mut capacity = 16usize;
    while n * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |h: i32| ((h ^ ((h as u32) >> 16) as i32) as u32 as usize) & (capacity - 1);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (bucket(hashes[i]), i));
    order
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Builder, ListBuilder, MapBuilder, StringArray, StringBuilder};

    use super::*;

    fn text(arr: &dyn Array, row: usize) -> String {
        let mut out = Vec::new();
        push_row_string(&mut out, arr, row, &mut String::new());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn arrays_print_as_java_arrays() {
        let mut b = ListBuilder::new(Int32Builder::new());
        b.append_value([Some(1), Some(2), None]);
        b.append_value([]);
        b.append_null();
        let a = b.finish();
        assert_eq!(text(&a, 0), "[1, 2, null]");
        assert_eq!(text(&a, 1), "[]");
        assert_eq!(text(&a, 2), "null");
    }

    #[test]
    fn maps_print_in_java_hash_map_order() {
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        // "a" (97) and "ab" (3105) share bucket 1, in insertion order; "b" (98) is bucket 2.
        for (k, v) in [("b", Some(2)), ("a", None), ("ab", Some(3))] {
            b.keys().append_value(k);
            b.values().append_option(v);
        }
        b.append(true).unwrap();
        b.append(true).unwrap();
        let m = b.finish();
        assert_eq!(text(&m, 0), "{a=null, ab=3, b=2}");
        assert_eq!(text(&m, 1), "{}");
    }

    #[test]
    fn json_maps_are_stored_in_flinks_internal_hash_map_order() {
        // As Flink 2.3 unnests these json objects (tests/golden/unnest_map).
        fn order<'a>(keys: &[&'a str]) -> Vec<&'a str> {
            flink_string_map_order(keys).into_iter().map(|i| keys[i]).collect()
        }
        assert_eq!(order(&["size", "color", "age"]), ["color", "age", "size"]);
        assert_eq!(order(&["color", "weight"]), ["weight", "color"]);
        assert_eq!(order(&["age", "size"]), ["age", "size"]);
    }

    #[test]
    fn a_grown_java_table_orders_by_the_wider_bucket() {
        // 13 keys grow the table to 32 buckets: "q" (113) is bucket 17, "a" 1.
        let keys: Vec<String> = "abcdefghijklq".chars().rev().map(String::from).collect();
        let arr = StringArray::from(keys.clone());
        let order: String = java_map_order(&arr).into_iter().map(|i| keys[i].clone()).collect();
        assert_eq!(order, "abcdefghijklq");
        let arr: Arc<dyn Array> = Arc::new(StringArray::from(vec!["q", "a"]));
        // With 16 buckets "q" (113 & 15 = 1) and "a" (97 & 15 = 1) share one: insertion order.
        assert_eq!(java_map_order(arr.as_ref()), vec![0, 1]);
    }
}
