//! The frames of a data connection, and their encoding.

use std::io::Read;
use std::sync::Arc;

use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::AttemptKey;
use crate::cluster::{BarrierWire, MAX_FRAME, read_body};
use crate::runtime::channel::Msg;

const HELLO: u8 = 0;
const BATCH: u8 = 1;
const WATERMARK: u8 = 2;
const IDLE: u8 = 3;
const END: u8 = 4;
const BARRIER: u8 = 5;
const CREDIT: u8 = 6;
const LATENCY: u8 = 7;
const HEADER: usize = 16;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Hello {
    pub(super) key: AttemptKey,
    pub(super) from: usize,
    /// The job's cluster secret, if the sender has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) secret: Option<String>,
}

/// One decoded frame.
#[derive(Debug)]
pub(super) enum Frame {
    Hello(Hello),
    Data { vertex: u32, subtask: u32, channel: u32, msg: Msg },
    Credit { vertex: u32, subtask: u32, channel: u32, n: u32 },
}

fn header(out: &mut Vec<u8>, tag: u8, vertex: u32, subtask: u32, channel: u32) {
    out.extend_from_slice(&[0u8; 4]); // length, filled in by `finish_frame`
    out.extend_from_slice(&[tag, 0, 0, 0]);
    out.extend_from_slice(&vertex.to_le_bytes());
    out.extend_from_slice(&subtask.to_le_bytes());
    out.extend_from_slice(&channel.to_le_bytes());
}

/// Appends one frame for `msg` to `out`.
pub(super) fn encode(out: &mut Vec<u8>, vertex: u32, subtask: u32, channel: u32, msg: &Msg) -> Result<(), String> {
    let start = out.len();
    let tag = match msg {
        Msg::Batch(_) => BATCH,
        Msg::Watermark(_) => WATERMARK,
        Msg::Idle(_) => IDLE,
        Msg::End => END,
        Msg::Barrier(_) => BARRIER,
        Msg::Latency(_) => LATENCY,
        Msg::Commit(_) => return Err("a commit is never sent between workers".into()),
    };
    header(out, tag, vertex, subtask, channel);
    match msg {
        Msg::Batch(b) => {
            let mut w = StreamWriter::try_new(&mut *out, &b.schema()).map_err(|e| e.to_string())?;
            w.write(b).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
        }
        Msg::Watermark(w) => out.extend_from_slice(&w.to_le_bytes()),
        Msg::Latency(t) => out.extend_from_slice(&t.to_le_bytes()),
        Msg::Idle(i) => out.push(u8::from(*i)),
        Msg::Barrier(b) => {
            out.extend(serde_json::to_vec(&BarrierWire::of(b)).map_err(|e| e.to_string())?);
        }
        Msg::End | Msg::Commit(_) => {}
    }
    finish_frame(out, start);
    Ok(())
}

fn finish_frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

pub(super) fn encode_hello(out: &mut Vec<u8>, hello: &Hello) -> Result<(), String> {
    let start = out.len();
    header(out, HELLO, 0, 0, 0);
    out.extend(serde_json::to_vec(hello).map_err(|e| e.to_string())?);
    finish_frame(out, start);
    Ok(())
}

pub(super) fn encode_credit(out: &mut Vec<u8>, vertex: u32, subtask: u32, channel: u32, n: u32) {
    let start = out.len();
    header(out, CREDIT, vertex, subtask, channel);
    out.extend_from_slice(&n.to_le_bytes());
    finish_frame(out, start);
}

pub(super) fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads one frame; barriers are opened with the worker's S3 settings.
pub(super) fn read(r: &mut impl Read, s3: &sluice_storage::S3Options) -> std::io::Result<Frame> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if !(HEADER..=MAX_FRAME).contains(&len) {
        return Err(bad(format!("bad frame length {len}")));
    }
    // The payload starts 16 bytes into the body, so a batch stays aligned.
    // The buffer grows as the bytes arrive, not zeroed first: batches are large.
    let body = read_body(r, len)?;
    let word = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    let (tag, vertex, subtask, channel) = (body[0], word(4), word(8), word(12));
    let payload = &body[HEADER..];
    let data = |msg| Ok(Frame::Data { vertex, subtask, channel, msg });
    match tag {
        HELLO => Ok(Frame::Hello(serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?)),
        BATCH => {
            let buffer = Buffer::from_vec(body).slice(HEADER);
            data(Msg::Batch(decode_batch(buffer).map_err(bad)?))
        }
        WATERMARK => {
            let b: [u8; 8] = payload.try_into().map_err(|_| bad("bad watermark frame"))?;
            data(Msg::Watermark(i64::from_le_bytes(b)))
        }
        LATENCY => {
            let b: [u8; 8] = payload.try_into().map_err(|_| bad("bad latency marker frame"))?;
            data(Msg::Latency(u64::from_le_bytes(b)))
        }
        IDLE => data(Msg::Idle(payload.first().copied().unwrap_or(0) != 0)),
        END => data(Msg::End),
        BARRIER => {
            let w: BarrierWire = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
            data(Msg::Barrier(Arc::new(w.open(s3).map_err(bad)?)))
        }
        CREDIT => {
            let b: [u8; 4] = payload.try_into().map_err(|_| bad("bad credit frame"))?;
            Ok(Frame::Credit { vertex, subtask, channel, n: u32::from_le_bytes(b) })
        }
        t => Err(bad(format!("unknown frame type {t}"))),
    }
}

fn decode_batch(mut buffer: Buffer) -> Result<RecordBatch, String> {
    let mut decoder = StreamDecoder::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            return Ok(batch);
        }
    }
    Err("a batch frame holds no record batch".into())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    pub(in crate::cluster::exchange) fn batch(n: i64) -> RecordBatch {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
                Arc::new(StringArray::from((0..n).map(|i| format!("row {i}")).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn frames_round_trip() {
        let s3 = sluice_storage::S3Options::default();
        let mut buf = Vec::new();
        let b = batch(100).slice(10, 50);
        encode(&mut buf, 3, 1, 7, &Msg::Batch(b.clone())).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::Watermark(-5)).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::Idle(true)).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::End).unwrap();
        encode(&mut buf, 3, 1, 7, &Msg::Latency(1_700_000_000_123_456)).unwrap();
        encode_credit(&mut buf, 3, 1, 7, 2);
        let mut r = std::io::Cursor::new(buf);
        match read(&mut r, &s3).unwrap() {
            Frame::Data { vertex: 3, subtask: 1, channel: 7, msg: Msg::Batch(got) } => assert_eq!(got, b),
            f => panic!("{f:?}"),
        }
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::Watermark(-5), .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::Idle(true), .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::End, .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Data { msg: Msg::Latency(1_700_000_000_123_456), .. }));
        assert!(matches!(read(&mut r, &s3).unwrap(), Frame::Credit { n: 2, .. }));
        assert!(read(&mut r, &s3).is_err());
    }

    #[test]
    fn a_corrupt_frame_is_an_error_not_a_panic() {
        let s3 = sluice_storage::S3Options::default();
        for bytes in [vec![1, 0, 0, 0, 9], vec![255, 255, 255, 255], vec![20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]] {
            assert!(read(&mut std::io::Cursor::new(bytes), &s3).is_err());
        }
        let mut buf = Vec::new();
        header(&mut buf, BATCH, 0, 0, 0);
        buf.extend_from_slice(b"not arrow");
        finish_frame(&mut buf, 0);
        assert!(read(&mut std::io::Cursor::new(buf), &s3).is_err());
    }
}
