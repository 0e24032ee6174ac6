//! Which run events a job's status changes make. Pure: driven by the statuses
//! [`crate::job::JobState::subscribe`] delivers, in order.

use super::event::EventType;
use crate::job::JobStatus;

/// The run, as the events have told it so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracker {
    /// A START (or a resuming RUNNING) was sent and no ending yet.
    open: bool,
    last: Option<JobStatus>,
    /// Runs begun in this process.
    pub runs: u64,
}

/// What to send for one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub events: Vec<EventType>,
    /// A new run begins with these events: it needs its run id.
    pub new_run: bool,
}

impl Tracker {
    /// The events for the job's next status.
    ///
    /// - A run begins when the job first runs: `START`, or `RUNNING` when this
    ///   process resumes a run another coordinator began (`resumes`).
    /// - Running again after a failure is `RUNNING`.
    /// - Finished or stopped with a savepoint is `COMPLETE`, canceled is `ABORT`,
    ///   failed for good is `FAIL`. A job that fails before it ever runs still
    ///   reports the failure, as `START` then `FAIL`.
    /// - `shutdown`: this process stops without ending the run (SIGTERM; a new
    ///   coordinator resumes it), so its cancellation ends nothing.
    pub fn on_status(&mut self, status: JobStatus, resumes: bool, shutdown: bool) -> Step {
        let last = self.last.replace(status);
        let mut step = Step { events: Vec::new(), new_run: false };
        if last == Some(status) {
            return step;
        }
        match (self.open, status) {
            (false, JobStatus::Running) => {
                step.new_run = true;
                step.events.push(if resumes && self.runs == 0 { EventType::Running } else { EventType::Start });
                self.open = true;
                self.runs += 1;
            }
            (false, JobStatus::Failed) if !shutdown => {
                step.new_run = true;
                step.events.extend([EventType::Start, EventType::Fail]);
                self.runs += 1;
            }
            (true, JobStatus::Running) => step.events.push(EventType::Running),
            (true, s) if s.is_terminal() => {
                self.open = false;
                if !shutdown && let Some(end) = EventType::ending(s) {
                    step.events.push(end);
                }
            }
            _ => {}
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::{Abort, Complete, Fail, Start};
    use JobStatus::{Canceled, Created, Failed, Failing, Finished, Restarting, Standby};
    const RUNNING: JobStatus = JobStatus::Running;
    const RESUMED: EventType = EventType::Running;

    fn events(statuses: &[JobStatus], resumes: bool, shutdown: bool) -> Vec<EventType> {
        let mut t = Tracker::default();
        statuses.iter().flat_map(|s| t.on_status(*s, resumes, shutdown).events).collect()
    }

    #[test]
    fn a_run_starts_once_and_ends_once() {
        assert_eq!(events(&[RUNNING, RUNNING, Finished], false, false), [Start, Complete]);
        assert_eq!(events(&[RUNNING, Failing, Restarting, RUNNING, Canceled], false, false), [Start, RESUMED, Abort]);
        assert_eq!(events(&[RUNNING, Failing, Failed], false, false), [Start, Fail]);
    }

    #[test]
    fn a_job_that_never_ran_reports_only_a_failure() {
        assert_eq!(events(&[Failed], false, false), [Start, Fail]);
        // A deployment that had ended stays terminal without running: nothing new happened.
        assert_eq!(events(&[Finished], false, false), Vec::<EventType>::new());
    }

    #[test]
    fn a_restarted_coordinator_resumes_its_run_and_sigterm_ends_nothing() {
        assert_eq!(events(&[RUNNING, Finished], true, false), [RESUMED, Complete]);
        assert_eq!(events(&[RUNNING, Canceled], false, true), [Start]);
    }

    #[test]
    fn a_standby_coordinator_begins_a_new_run_per_activation() {
        let mut t = Tracker::default();
        let mut all = Vec::new();
        let mut new_runs = 0;
        for s in [Standby, RUNNING, Finished, Created, Standby, RUNNING, Failed] {
            let step = t.on_status(s, true, false);
            new_runs += u32::from(step.new_run);
            all.extend(step.events);
        }
        assert_eq!(all, [RESUMED, Complete, Start, Fail]);
        assert_eq!(new_runs, 2);
    }
}
