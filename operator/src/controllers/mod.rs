//! The two controllers, peers over one [`crate::context::Context`]: StreamJobs
//! ([`streamjob`]) and the one-off savepoints of StreamSavepoints
//! ([`streamsavepoint`]).

pub mod streamjob;
pub mod streamsavepoint;
