#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The local-directory backend, on a real temporary directory.

use std::fs;
use std::path::Path;

use sluice_storage::{ObjectInfo, S3Options, Storage, StorageError, UploadHandle};

fn open(dir: &Path) -> Storage {
    Storage::open(&format!("file://{}", dir.display()), &S3Options::default()).unwrap()
}

fn paths(list: Vec<ObjectInfo>) -> Vec<String> {
    list.into_iter().map(|o| o.path).collect()
}

/// Every file under `dir`, hidden ones included, relative to it.
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[test]
fn uris_and_children() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    assert_eq!(s.uri(), format!("file://{}", tmp.path().display()));
    assert_eq!(s.child("job/chk-1").uri(), format!("file://{}/job/chk-1", tmp.path().display()));
    // A plain path is a local directory too.
    let plain = Storage::open(tmp.path().to_str().unwrap(), &S3Options::default()).unwrap();
    assert_eq!(plain.uri(), s.uri());
}

#[test]
fn put_get_range_list_delete_rename() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).child("job-1");
    s.check().unwrap();
    assert!(tmp.path().join("job-1").is_dir());

    s.put("chk-1/_metadata", b"meta-1").unwrap();
    s.put("chk-1/op-a/state", b"0123456789").unwrap();
    s.put("chk-10/_metadata", b"meta-10").unwrap();
    s.put("chk-1/_metadata", b"meta-1b").unwrap(); // replaces
    assert_eq!(fs::read(tmp.path().join("job-1/chk-1/_metadata")).unwrap(), b"meta-1b");
    // No temporary files are left behind by put.
    assert_eq!(all_files(tmp.path()), ["job-1/chk-1/_metadata", "job-1/chk-1/op-a/state", "job-1/chk-10/_metadata"]);

    assert_eq!(s.get("chk-1/op-a/state").unwrap(), b"0123456789");
    assert_eq!(s.get_range("chk-1/op-a/state", 3, 4).unwrap(), b"3456");
    assert_eq!(s.get_range("chk-1/op-a/state", 8, 10).unwrap(), b"89");
    assert_eq!(s.get_range("chk-1/op-a/state", 20, 10).unwrap(), b"");

    let listed = s.list("chk-1").unwrap();
    assert_eq!(
        listed,
        [
            ObjectInfo { path: "chk-1/_metadata".into(), size: 7 },
            ObjectInfo { path: "chk-1/op-a/state".into(), size: 10 },
        ]
    );
    assert_eq!(paths(s.list("").unwrap()), ["chk-1/_metadata", "chk-1/op-a/state", "chk-10/_metadata"]);
    assert_eq!(paths(s.list("chk-1/_metadata").unwrap()), ["chk-1/_metadata"]);
    assert_eq!(s.list("chk-2").unwrap(), []);
    assert_eq!(s.list_dirs("").unwrap(), ["chk-1", "chk-10"]);
    assert_eq!(s.list_dirs("chk-1").unwrap(), ["op-a"]);
    assert_eq!(s.list_dirs("nope").unwrap(), Vec::<String>::new());
    assert!(s.exists("chk-1/_metadata").unwrap());
    assert!(!s.exists("chk-1").unwrap());
    assert!(!s.exists("chk-3/_metadata").unwrap());

    s.rename("chk-10/_metadata", "moved/m").unwrap();
    assert_eq!(s.get("moved/m").unwrap(), b"meta-10");
    assert!(!s.exists("chk-10/_metadata").unwrap());
    let err = s.rename("chk-10/_metadata", "x").unwrap_err();
    assert!(err.is_not_found(), "{err}");

    s.delete("chk-1/_metadata").unwrap();
    s.delete("chk-1/_metadata").unwrap(); // missing is fine
    assert_eq!(paths(s.list("").unwrap()), ["chk-1/op-a/state", "moved/m"]);
    s.delete_prefix("chk-1").unwrap();
    s.delete_prefix("chk-1").unwrap();
    assert_eq!(paths(s.list("").unwrap()), ["moved/m"]);
    s.delete_prefix("").unwrap();
    assert_eq!(s.list("").unwrap(), []);
    assert!(!tmp.path().join("job-1").exists());
    // On the store's root, the root directory itself stays.
    let root = open(tmp.path());
    root.put("x/y", b"y").unwrap();
    root.delete_prefix("").unwrap();
    assert_eq!(root.list("").unwrap(), []);
    assert!(tmp.path().is_dir());
}

#[test]
fn errors_name_the_uri() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let err = s.get("chk-3/_metadata").unwrap_err();
    assert!(err.is_not_found());
    let want = format!("file://{}/chk-3/_metadata", tmp.path().display());
    assert!(err.to_string().contains(&want), "{err}");
    assert!(s.get_range("missing", 0, 1).unwrap_err().is_not_found());
    let err = s.put("../escape", b"x").unwrap_err();
    assert!(matches!(err, StorageError::InvalidUri { .. }), "{err}");
    let err = Storage::open("ftp://x/y", &S3Options::default()).unwrap_err();
    assert!(err.to_string().contains("ftp://x/y"), "{err}");

    // A file where a directory is needed.
    s.put("blocker", b"x").unwrap();
    let err = s.put("blocker/child", b"y").unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(err.to_string().contains("blocker"), "{err}");
}

#[test]
fn upload_is_staged_hidden_and_completed_by_another_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).child("out");
    let mut up = s.begin_upload("dt=1/part-0.csv").unwrap();
    up.write(b"a,1\n").unwrap();
    up.write(b"b,2\n").unwrap();
    let h = up.prepare().unwrap();

    // Durable in a hidden staging file; invisible to readers.
    let files = all_files(&tmp.path().join("out/dt=1"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(".part-0.csv.inprogress-"), "{files:?}");
    assert_eq!(fs::read(tmp.path().join("out/dt=1").join(&files[0])).unwrap(), b"a,1\nb,2\n");
    assert_eq!(s.list("").unwrap(), []);
    assert!(!s.exists("dt=1/part-0.csv").unwrap());
    assert_eq!(h.target_uri(), format!("file://{}/out/dt=1/part-0.csv", tmp.path().display()));

    // Another process: a fresh Storage (even with another base) and the handle from its bytes.
    let bytes = h.to_bytes();
    let other = open(tmp.path());
    let h2 = UploadHandle::from_bytes(&bytes).unwrap();
    assert_eq!(h2, h);
    assert_eq!(other.list_pending_uploads("").unwrap(), std::slice::from_ref(&h));
    other.complete_recorded(&h2).unwrap();
    assert_eq!(s.get("dt=1/part-0.csv").unwrap(), b"a,1\nb,2\n");
    assert_eq!(all_files(tmp.path()), ["out/dt=1/part-0.csv"]);
    other.complete_recorded(&h2).unwrap(); // idempotent
    assert_eq!(s.get("dt=1/part-0.csv").unwrap(), b"a,1\nb,2\n");
    assert_eq!(other.list_pending_uploads("").unwrap(), []);
}

#[test]
fn pending_uploads_are_listed_and_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let mut a = s.begin_upload("sink/a").unwrap();
    a.write(b"aaa").unwrap();
    let ha = a.prepare().unwrap();
    let mut b = s.begin_upload("sink/sub/b").unwrap();
    b.write(b"bbb").unwrap();
    let hb = b.prepare().unwrap();
    let mut c = s.begin_upload("other/c").unwrap();
    c.write(b"c").unwrap();
    let _hc = c.prepare().unwrap();

    let pending = s.list_pending_uploads("sink").unwrap();
    assert_eq!(pending, [ha.clone(), hb.clone()]);
    assert_eq!(s.list_pending_uploads("sink/a").unwrap(), std::slice::from_ref(&ha));
    assert_eq!(s.list_pending_uploads("sink/sub").unwrap(), std::slice::from_ref(&hb));
    assert_eq!(s.list_pending_uploads("none").unwrap(), []);
    for h in &pending {
        s.abort_recorded(h).unwrap();
        s.abort_recorded(h).unwrap(); // already gone is fine
    }
    assert_eq!(s.list_pending_uploads("sink").unwrap(), []);
    assert_eq!(s.list_pending_uploads("").unwrap().len(), 1);
    assert!(all_files(&tmp.path().join("sink")).is_empty());
    let err = s.complete_recorded(&ha).unwrap_err();
    assert!(matches!(err, StorageError::UploadLost { .. }), "{err}");
    assert!(err.to_string().contains("sink/a"), "{err}");

    // An upload dropped or aborted before prepare leaves nothing.
    let mut d = s.begin_upload("sink/d").unwrap();
    d.write(b"d").unwrap();
    drop(d);
    s.begin_upload("sink/e").unwrap().abort().unwrap();
    assert!(all_files(&tmp.path().join("sink")).is_empty());
}

#[test]
fn empty_upload_completes_to_an_empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let h = s.begin_upload("empty").unwrap().prepare().unwrap();
    assert!(!s.exists("empty").unwrap());
    s.complete_recorded(&h).unwrap();
    assert_eq!(s.get("empty").unwrap(), b"");
}

#[test]
fn put_if_absent_creates_once_and_racing_writers_get_one_winner() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path()).child("job");
    assert!(s.put_if_absent("_fence/1", b"first").unwrap());
    assert!(!s.put_if_absent("_fence/1", b"second").unwrap());
    assert_eq!(s.get("_fence/1").unwrap(), b"first");
    // No temporary files are left next to it.
    assert_eq!(all_files(&tmp.path().join("job")), ["_fence/1"]);
    // Eight threads race for each of 20 names: exactly one wins each.
    for n in 0..20 {
        let name = format!("race/{n}");
        let wins: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|t| {
                    let (s, name) = (s.clone(), name.clone());
                    scope.spawn(move || s.put_if_absent(&name, &[t]).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(wins, 1, "{name}");
        assert_eq!(s.get(&name).unwrap().len(), 1);
    }
}

#[test]
fn the_parent_of_a_directory_reaches_its_siblings() {
    let tmp = tempfile::tempdir().unwrap();
    let job = open(&tmp.path().join("job"));
    job.child("chk-1").put("a/0.state", b"one").unwrap();
    // Opened at the snapshot directory itself, as a restore URI is.
    let chk2 = open(&tmp.path().join("job/chk-2"));
    let up = chk2.parent().unwrap();
    assert_eq!(up.uri(), job.uri());
    assert_eq!(up.child("chk-1").get("a/0.state").unwrap(), b"one");
    // And from a child storage.
    assert_eq!(job.child("chk-2").parent().unwrap().child("chk-1").get("a/0.state").unwrap(), b"one");
    assert_eq!(job.child("x/chk-2").parent().unwrap().uri(), job.child("x").uri());
    assert!(open(Path::new("/")).parent().is_none());
}

#[test]
fn objects_are_copied_between_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let a = open(&tmp.path().join("a"));
    let b = open(&tmp.path().join("b"));
    a.put("x/1.state", b"one").unwrap();
    b.copy_from(&a, "x/1.state", "y/1.state").unwrap();
    assert_eq!(b.get("y/1.state").unwrap(), b"one");
    // Within one store.
    a.copy_from(&a, "x/1.state", "x/2.state").unwrap();
    assert_eq!(a.get("x/2.state").unwrap(), b"one");
    assert_eq!(a.get("x/1.state").unwrap(), b"one", "a copy leaves its source");
    assert!(b.copy_from(&a, "missing", "z").unwrap_err().is_not_found());
}
