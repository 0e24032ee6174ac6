//! The in-memory fake, for unit tests of callers. It follows the same semantics as the real
//! backends: directory-style prefixes, invisible staged uploads, idempotent completion.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::handle::HandleState;
use crate::store::{ObjectStore, UploadSink};
use crate::{ObjectInfo, StorageError, UploadHandle, location, unique_suffix};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Vec<u8>>,
    /// Prepared uploads: staging id -> (target key, data).
    staged: HashMap<String, (String, Vec<u8>)>,
}

pub(crate) struct MemStore {
    state: Arc<Mutex<State>>,
}

fn mem_uri(key: &str) -> String {
    format!("memory:///{key}")
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave State half-updated: every update is one insert
    // or remove.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemStore {
    pub(crate) fn new() -> Self {
        MemStore { state: Arc::new(Mutex::new(State::default())) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl ObjectStore for MemStore {
    fn uri(&self, key: &str) -> String {
        mem_uri(key)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.state().objects.insert(key.to_string(), data.to_vec());
        Ok(())
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.objects.contains_key(key) {
            return Ok(false);
        }
        state.objects.insert(key.to_string(), data.to_vec());
        Ok(true)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.state().objects.get(key).cloned().ok_or_else(|| StorageError::NotFound { uri: mem_uri(key) })
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let state = self.state();
        let data = state.objects.get(key).ok_or_else(|| StorageError::NotFound { uri: mem_uri(key) })?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(self
            .state()
            .objects
            .iter()
            .filter(|(k, _)| location::is_under(k, prefix))
            .map(|(k, v)| ObjectInfo { path: k.clone(), size: v.len() as u64 })
            .collect())
    }

    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let dirs: BTreeSet<String> = self
            .state()
            .objects
            .keys()
            .filter(|k| location::is_under(k, dir) && k.as_str() != dir)
            .filter_map(|k| location::relative_to(k, dir).split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        Ok(dirs.into_iter().collect())
    }

    fn exists(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.state().objects.contains_key(key))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.state().objects.remove(key);
        Ok(())
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        self.state().objects.retain(|k, _| !location::is_under(k, prefix));
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let mut state = self.state();
        let data = state.objects.remove(from).ok_or_else(|| StorageError::NotFound { uri: mem_uri(from) })?;
        state.objects.insert(to.to_string(), data);
        Ok(())
    }

    fn check(&self, _prefix: &str) -> Result<(), StorageError> {
        Ok(())
    }

    fn begin_upload(&self, key: &str) -> Result<Box<dyn UploadSink>, StorageError> {
        Ok(Box::new(MemUpload { state: Arc::clone(&self.state), key: key.to_string(), data: Vec::new() }))
    }

    fn complete_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::Memory { key, staging_id } = &h.state else {
            return Err(h.wrong_backend("in-memory"));
        };
        let mut state = self.state();
        match state.staged.remove(staging_id) {
            Some((target, data)) => {
                state.objects.insert(target, data);
                Ok(())
            }
            None if state.objects.contains_key(key) => Ok(()),
            None => Err(StorageError::UploadLost {
                uri: mem_uri(key),
                detail: format!("staged upload {staging_id} is gone"),
            }),
        }
    }

    fn abort_recorded(&self, h: &UploadHandle) -> Result<(), StorageError> {
        let HandleState::Memory { staging_id, .. } = &h.state else {
            return Err(h.wrong_backend("in-memory"));
        };
        self.state().staged.remove(staging_id);
        Ok(())
    }

    fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<UploadHandle>, StorageError> {
        Ok(self
            .state()
            .staged
            .iter()
            .filter(|(_, (key, _))| location::is_under(key, prefix))
            .map(|(id, (key, _))| {
                UploadHandle::new(mem_uri(key), HandleState::Memory { key: key.clone(), staging_id: id.clone() })
            })
            .collect())
    }
}

struct MemUpload {
    state: Arc<Mutex<State>>,
    key: String,
    data: Vec<u8>,
}

impl UploadSink for MemUpload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn prepare(self: Box<Self>) -> Result<UploadHandle, StorageError> {
        let MemUpload { state, key, data } = *self;
        let staging_id = unique_suffix();
        lock(&state).staged.insert(staging_id.clone(), (key.clone(), data));
        Ok(UploadHandle::new(mem_uri(&key), HandleState::Memory { key, staging_id }))
    }

    fn abort(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ObjectInfo, Storage, StorageError, UploadHandle};

    fn paths(list: Vec<ObjectInfo>) -> Vec<String> {
        list.into_iter().map(|o| o.path).collect()
    }

    #[test]
    fn put_if_absent_keeps_the_first_object() {
        let s = Storage::in_memory();
        assert!(s.put_if_absent("a", b"1").unwrap());
        assert!(!s.put_if_absent("a", b"2").unwrap());
        assert_eq!(s.get("a").unwrap(), b"1");
    }

    #[test]
    fn put_get_list_with_directory_prefixes() {
        let s = Storage::in_memory();
        let job = s.child("job-1");
        job.put("chk-1/_metadata", b"m1").unwrap();
        job.put("chk-1/op/state", b"state-1").unwrap();
        job.put("chk-10/_metadata", b"m10").unwrap();
        s.put("other/x", b"x").unwrap();

        assert_eq!(job.uri(), "memory:///job-1");
        assert_eq!(job.get("chk-1/op/state").unwrap(), b"state-1");
        assert_eq!(job.get_range("chk-1/op/state", 2, 3).unwrap(), b"ate");
        assert_eq!(job.get_range("chk-1/op/state", 4, 100).unwrap(), b"e-1");
        assert_eq!(job.get_range("chk-1/op/state", 50, 1).unwrap(), b"");
        assert_eq!(paths(job.list("chk-1").unwrap()), ["chk-1/_metadata", "chk-1/op/state"]);
        assert_eq!(paths(job.list("").unwrap()), ["chk-1/_metadata", "chk-1/op/state", "chk-10/_metadata"]);
        assert_eq!(job.list("chk-1").unwrap()[1].size, 7);
        assert_eq!(job.list("missing").unwrap(), []);
        assert_eq!(job.list_dirs("").unwrap(), ["chk-1", "chk-10"]);
        assert_eq!(job.list_dirs("chk-1").unwrap(), ["op"]);
        assert_eq!(s.list_dirs("").unwrap(), ["job-1", "other"]);
        assert!(job.exists("chk-10/_metadata").unwrap());
        assert!(!job.exists("chk-10").unwrap());
    }

    #[test]
    fn delete_rename_and_errors() {
        let s = Storage::in_memory();
        s.put("a/1", b"1").unwrap();
        s.put("a/2", b"2").unwrap();
        s.put("ab/3", b"3").unwrap();
        s.delete("a/1").unwrap();
        s.delete("a/1").unwrap();
        assert_eq!(paths(s.list("").unwrap()), ["a/2", "ab/3"]);
        s.rename("a/2", "b/2").unwrap();
        assert_eq!(s.get("b/2").unwrap(), b"2");
        let err = s.rename("a/2", "c").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("memory:///a/2"), "{err}");
        s.delete_prefix("a").unwrap();
        s.delete_prefix("nothing").unwrap();
        assert_eq!(paths(s.list("").unwrap()), ["ab/3", "b/2"]);
        let err = s.get("a/2").unwrap_err();
        assert!(err.is_not_found());
        let err = s.get("x/../y").unwrap_err();
        assert!(matches!(err, StorageError::InvalidUri { .. }), "{err}");
        let err = s.get("").unwrap_err();
        assert!(matches!(err, StorageError::InvalidUri { .. }), "{err}");
        s.delete_prefix("").unwrap();
        assert_eq!(s.list("").unwrap(), []);
    }

    #[test]
    fn uploads_are_invisible_until_completed_and_completion_is_idempotent() {
        let s = Storage::in_memory();
        let mut up = s.begin_upload("out/part-0").unwrap();
        up.write(b"hello ").unwrap();
        up.write(b"world").unwrap();
        let h = up.prepare().unwrap();
        assert_eq!(h.target_uri(), "memory:///out/part-0");
        assert!(!s.exists("out/part-0").unwrap());
        assert_eq!(s.list("").unwrap(), []);
        assert_eq!(s.list_pending_uploads("out").unwrap(), std::slice::from_ref(&h));
        assert_eq!(s.list_pending_uploads("elsewhere").unwrap(), []);

        let h = UploadHandle::from_bytes(&h.to_bytes()).unwrap();
        s.complete_recorded(&h).unwrap();
        assert_eq!(s.get("out/part-0").unwrap(), b"hello world");
        s.complete_recorded(&h).unwrap();
        assert_eq!(s.list_pending_uploads("").unwrap(), []);

        let mut up = s.begin_upload("out/part-1").unwrap();
        up.write(b"x").unwrap();
        let h1 = up.prepare().unwrap();
        s.abort_recorded(&h1).unwrap();
        s.abort_recorded(&h1).unwrap();
        assert_eq!(s.list_pending_uploads("").unwrap(), []);
        let err = s.complete_recorded(&h1).unwrap_err();
        assert!(matches!(err, StorageError::UploadLost { .. }), "{err}");

        // Dropped or aborted before prepare: nothing is left.
        let mut up = s.begin_upload("out/part-2").unwrap();
        up.write(b"y").unwrap();
        up.abort().unwrap();
        drop(s.begin_upload("out/part-3").unwrap());
        assert_eq!(paths(s.list("").unwrap()), ["out/part-0"]);
        assert_eq!(s.list_pending_uploads("").unwrap(), []);
    }
}
