#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The S3 backend against a real S3-compatible server (MinIO, see `scripts/s3-server.sh`).
//! Each test starts its own server, so they run in parallel and may stop theirs.

use std::time::{Duration, Instant};

use sluice_storage::testing::S3Server;
use sluice_storage::{ObjectInfo, PART_SIZE, S3Options, Storage, StorageError, UploadHandle};

fn paths(list: Vec<ObjectInfo>) -> Vec<String> {
    list.into_iter().map(|o| o.path).collect()
}

/// Deterministic, non-repeating-looking bytes.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn open(server: &S3Server, uri: &str) -> Storage {
    Storage::open(uri, &server.options()).unwrap()
}

#[test]
fn objects_round_trip_list_and_delete() {
    let server = S3Server::start();
    server.create_bucket("ckpt");
    let root = open(&server, "s3://ckpt/jobs");
    assert_eq!(root.uri(), "s3://ckpt/jobs");
    root.check().unwrap();
    let s = root.child("job-1");
    assert_eq!(s.uri(), "s3://ckpt/jobs/job-1");

    s.put("chk-1/_metadata", b"meta-1").unwrap();
    s.put("chk-1/op-a/state", b"0123456789").unwrap();
    s.put("chk-10/_metadata", b"meta-10").unwrap();
    s.put("chk-1/_metadata", b"meta-1b").unwrap(); // replaces
    s.put("empty", b"").unwrap();
    assert!(s.exists("empty").unwrap());
    assert_eq!(s.get("empty").unwrap(), b"");
    s.delete("empty").unwrap();
    assert!(!s.exists("empty").unwrap());
    root.put("job-2/chk-1/_metadata", b"other job").unwrap();

    assert_eq!(s.get("chk-1/_metadata").unwrap(), b"meta-1b");
    assert_eq!(s.get_range("chk-1/op-a/state", 3, 4).unwrap(), b"3456");
    assert_eq!(s.get_range("chk-1/op-a/state", 8, 10).unwrap(), b"89");
    assert_eq!(s.get_range("chk-1/op-a/state", 20, 10).unwrap(), b"");
    assert_eq!(s.get_range("chk-1/op-a/state", 0, 0).unwrap(), b"");

    assert_eq!(
        s.list("chk-1").unwrap(),
        [
            ObjectInfo { path: "chk-1/_metadata".into(), size: 7 },
            ObjectInfo { path: "chk-1/op-a/state".into(), size: 10 },
        ]
    );
    assert_eq!(paths(s.list("").unwrap()), ["chk-1/_metadata", "chk-1/op-a/state", "chk-10/_metadata"]);
    assert_eq!(paths(s.list("chk-1/_metadata").unwrap()), ["chk-1/_metadata"]);
    assert_eq!(s.list("chk-2").unwrap(), []);
    assert_eq!(root.list_dirs("").unwrap(), ["job-1", "job-2"]);
    assert_eq!(s.list_dirs("").unwrap(), ["chk-1", "chk-10"]);
    assert_eq!(s.list_dirs("chk-1").unwrap(), ["op-a"]);
    assert_eq!(s.list_dirs("missing").unwrap(), Vec::<String>::new());
    assert!(s.exists("chk-1/_metadata").unwrap());
    assert!(!s.exists("chk-1").unwrap());
    assert!(!s.exists("chk-3/_metadata").unwrap());

    let err = s.get("chk-3/_metadata").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("s3://ckpt/jobs/job-1/chk-3/_metadata"), "{err}");
    assert!(s.get_range("chk-3/_metadata", 0, 10).unwrap_err().is_not_found());

    s.rename("chk-10/_metadata", "moved/with space+ü").unwrap();
    assert_eq!(s.get("moved/with space+ü").unwrap(), b"meta-10");
    assert!(!s.exists("chk-10/_metadata").unwrap());
    assert!(s.rename("chk-10/_metadata", "x").unwrap_err().is_not_found());
    // A server-side copy, from a storage opened elsewhere in the same bucket.
    let sp = s.parent().unwrap().child("savepoints");
    sp.copy_from(&s, "moved/with space+ü", "sp-1/copy").unwrap();
    assert_eq!(sp.get("sp-1/copy").unwrap(), b"meta-10");
    assert!(s.exists("moved/with space+ü").unwrap());
    sp.delete_prefix("").unwrap();

    s.delete("chk-1/_metadata").unwrap();
    s.delete("chk-1/_metadata").unwrap(); // missing is fine
    assert_eq!(paths(s.list("").unwrap()), ["chk-1/op-a/state", "moved/with space+ü"]);
    s.delete_prefix("chk-1").unwrap();
    s.delete_prefix("chk-1").unwrap();
    assert_eq!(paths(s.list("").unwrap()), ["moved/with space+ü"]);
    s.delete_prefix("").unwrap();
    assert_eq!(s.list("").unwrap(), []);
    // Only job-1 was deleted.
    assert_eq!(paths(root.list("").unwrap()), ["job-2/chk-1/_metadata"]);
}

#[test]
fn large_put_uses_parts_and_round_trips() {
    let server = S3Server::start();
    server.create_bucket("big");
    let s = open(&server, "s3://big");
    // Five of the 16 MiB ranges that a whole read fetches in parallel, the last one short.
    let data = pattern(70 * 1024 * 1024 + 5);
    s.put("state/blob", &data).unwrap();
    assert_eq!(s.list("").unwrap(), [ObjectInfo { path: "state/blob".into(), size: data.len() as u64 }]);
    let back = s.get("state/blob").unwrap();
    assert!(back == data, "70 MiB object differs after the round trip");
    // Across the boundary between part 1 and part 2.
    let at = PART_SIZE as u64 - 3;
    assert_eq!(s.get_range("state/blob", at, 6).unwrap(), &data[PART_SIZE - 3..PART_SIZE + 3]);
    // A multipart put leaves no upload behind.
    assert_eq!(s.list_pending_uploads("state/blob").unwrap(), []);
}

#[test]
fn two_phase_upload_is_invisible_until_completed() {
    let server = S3Server::start();
    server.create_bucket("sink");
    let s = open(&server, "s3://sink/out");

    // More than one part: one is sent during write(), the rest at prepare().
    let data = pattern(PART_SIZE + 1024 * 1024 + 7);
    let mut up = s.begin_upload("dt=1/part-0").unwrap();
    for chunk in data.chunks(1 << 20) {
        up.write(chunk).unwrap();
    }
    let h = up.prepare().unwrap();
    assert_eq!(h.target_uri(), "s3://sink/out/dt=1/part-0");
    assert_eq!(s.list("").unwrap(), []);
    assert!(!s.exists("dt=1/part-0").unwrap());
    assert!(s.get("dt=1/part-0").unwrap_err().is_not_found());

    // "After a restart": a new Storage and the handle from bytes.
    let bytes = h.to_bytes();
    let restarted = open(&server, "s3://sink");
    let h2 = UploadHandle::from_bytes(&bytes).unwrap();
    // MinIO lists multipart uploads per object only, so ask for the exact path (see README).
    assert_eq!(restarted.list_pending_uploads("out/dt=1/part-0").unwrap(), std::slice::from_ref(&h2));
    restarted.complete_recorded(&h2).unwrap();
    let back = s.get("dt=1/part-0").unwrap();
    assert!(back == data, "completed upload differs from what was written");
    assert_eq!(paths(s.list("").unwrap()), ["dt=1/part-0"]);
    restarted.complete_recorded(&h2).unwrap(); // idempotent
    assert_eq!(s.get("dt=1/part-0").unwrap().len(), data.len());
    assert_eq!(restarted.list_pending_uploads("out/dt=1/part-0").unwrap(), []);

    // Small and empty uploads.
    let mut small = s.begin_upload("small").unwrap();
    small.write(b"tiny").unwrap();
    let hs = small.prepare().unwrap();
    let he = s.begin_upload("empty").unwrap().prepare().unwrap();
    assert!(!s.exists("small").unwrap());
    s.complete_recorded(&hs).unwrap();
    s.complete_recorded(&he).unwrap();
    assert_eq!(s.get("small").unwrap(), b"tiny");
    assert_eq!(s.get("empty").unwrap(), b"");
}

#[test]
fn pending_uploads_are_found_and_aborted() {
    let server = S3Server::start();
    server.create_bucket("sink");
    let s = open(&server, "s3://sink/out");
    let mut a = s.begin_upload("job/a").unwrap();
    a.write(b"aaa").unwrap();
    let ha = a.prepare().unwrap();
    let mut b = s.begin_upload("job/sub/b").unwrap();
    b.write(b"bbb").unwrap();
    let hb = b.prepare().unwrap();
    let mut c = s.begin_upload("elsewhere/c").unwrap();
    c.write(b"c").unwrap();
    let hc = c.prepare().unwrap();

    // MinIO lists multipart uploads per object only (an exact path, not a directory); AWS S3
    // lists by prefix. The handles found carry the parts uploaded so far.
    assert_eq!(s.list_pending_uploads("job/a").unwrap(), std::slice::from_ref(&ha));
    assert_eq!(s.list_pending_uploads("job/sub/b").unwrap(), std::slice::from_ref(&hb));
    assert_eq!(s.list_pending_uploads("elsewhere/c").unwrap(), std::slice::from_ref(&hc));
    assert_eq!(s.list_pending_uploads("job/zzz").unwrap(), []);
    for key in ["job/a", "job/sub/b"] {
        for h in s.list_pending_uploads(key).unwrap() {
            s.abort_recorded(&h).unwrap();
            s.abort_recorded(&h).unwrap(); // already gone is fine
        }
        assert_eq!(s.list_pending_uploads(key).unwrap(), []);
    }
    assert_eq!(s.list_pending_uploads("elsewhere/c").unwrap(), [hc]);
    let err = s.complete_recorded(&ha).unwrap_err();
    assert!(matches!(err, StorageError::UploadLost { .. }), "{err}");
    assert!(err.to_string().contains("s3://sink/out/job/a"), "{err}");
    assert_eq!(s.list("").unwrap(), []);

    // Dropping an unprepared upload that already sent a part aborts it.
    let mut d = s.begin_upload("job/d").unwrap();
    d.write(&pattern(PART_SIZE)).unwrap();
    assert_eq!(s.list_pending_uploads("job/d").unwrap().len(), 1);
    drop(d);
    assert_eq!(s.list_pending_uploads("job/d").unwrap(), []);
}

#[test]
fn missing_bucket_and_bad_credentials_are_named() {
    let server = S3Server::start();
    server.create_bucket("real");
    let missing = open(&server, "s3://no-such-bucket/chk");
    let errors = [
        missing.check().unwrap_err(),
        missing.list("").unwrap_err(),
        missing.put("x", b"x").unwrap_err(),
        missing.exists("chk-1/_metadata").unwrap_err(),
    ];
    for err in errors {
        match &err {
            StorageError::NoSuchBucket { bucket, .. } => assert_eq!(bucket, "no-such-bucket"),
            other => panic!("expected NoSuchBucket, got {other:?}"),
        }
        assert!(err.to_string().contains("s3://no-such-bucket/chk"), "{err}");
    }

    let wrong_secret = S3Options { secret_key: Some("not-the-secret".into()), ..server.options() };
    let s = Storage::open("s3://real/p", &wrong_secret).unwrap();
    for err in [s.check().unwrap_err(), s.get("k").unwrap_err(), s.put("k", b"v").unwrap_err()] {
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("s3://real/p"), "{msg}");
        assert!(!msg.contains("not-the-secret"), "the secret leaked: {msg}");
    }
    let wrong_key = S3Options { access_key: Some("nobody".into()), ..server.options() };
    let err = Storage::open("s3://real", &wrong_key).unwrap().check().unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied { .. }), "{err:?}");
    // The right credentials still work.
    open(&server, "s3://real").check().unwrap();
}

#[test]
fn stopped_server_fails_fast_and_recovers_after_restart() {
    let mut server = S3Server::start();
    server.create_bucket("ckpt");
    let s = open(&server, "s3://ckpt/job");
    s.put("chk-1/_metadata", b"one").unwrap();
    let mut up = s.begin_upload("chk-2/state").unwrap();
    up.write(b"partial").unwrap();

    server.stop();
    // A guard against hanging, not a speed target: timeouts and retries are bounded.
    let hang_guard = Duration::from_secs(60);
    let started = Instant::now();
    let err = s.put("chk-2/_metadata", b"two").unwrap_err();
    eprintln!("put against the stopped server failed after {:?}", started.elapsed());
    assert!(started.elapsed() < hang_guard, "put took {:?}", started.elapsed());
    match &err {
        StorageError::Unreachable { endpoint, uri, .. } => {
            assert_eq!(endpoint, &server.endpoint);
            assert_eq!(uri, "s3://ckpt/job/chk-2/_metadata");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let started = Instant::now();
    assert!(matches!(up.prepare().unwrap_err(), StorageError::Unreachable { .. }));
    assert!(matches!(s.list("").unwrap_err(), StorageError::Unreachable { .. }));
    assert!(started.elapsed() < hang_guard, "took {:?}", started.elapsed());

    server.restart();
    assert_eq!(s.get("chk-1/_metadata").unwrap(), b"one");
    s.put("chk-2/_metadata", b"two").unwrap();
    assert_eq!(paths(s.list("").unwrap()), ["chk-1/_metadata", "chk-2/_metadata"]);
}

#[test]
fn put_if_absent_is_a_conditional_write() {
    let server = S3Server::start();
    server.create_bucket("fence");
    let s = open(&server, "s3://fence/job");
    assert!(s.put_if_absent("_fence/1", b"first").unwrap());
    assert!(!s.put_if_absent("_fence/1", b"second").unwrap());
    assert_eq!(s.get("_fence/1").unwrap(), b"first");
    // Racing writers: exactly one wins.
    let wins: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6u8)
            .map(|t| {
                let s = s.clone();
                scope.spawn(move || s.put_if_absent("_fence/2", &[t]).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(wins, 1);
    let missing = open(&server, "s3://no-such-bucket/job").put_if_absent("x", b"x").unwrap_err();
    assert!(matches!(missing, StorageError::NoSuchBucket { .. }), "{missing}");
}
