//! The inter-agent lane: the thread that serves the QA agent and makes the
//! coder's calls to it, at a CPU priority of its own.
//!
//! phase2 judges the coder -> QA call (inter-agent p95 ≤ 5 ms), while the
//! rest of an agents process is queued work no request waits on. On a shared
//! machine the runner starts the agents at the background tier (nice +10,
//! `env::priority`), and each of the call's wake-ups (the request read, the
//! answer read) then waited for a core behind the front door: p95 19.9 ms at
//! 30,000 phase2 users with every other criterion met (2026-12-06, run
//! `20261206T105651Z`). Running the whole process at 0 met the target and
//! cost every saturated run availability, because the tasks' own work took
//! the front door's CPU (ARCHITECTURE, CPU priority tiers).
//!
//! Linux keeps a nice value per thread, so the lane is a current-thread
//! runtime on a thread of its own at the nice value it is given: the calls
//! rank with what requests wait on, and the tasks' work stays where it was,
//! as a deployment gives the pods on a judged path CPU of their own. Without
//! a nice value of its own, or at the process's, the lane is the runtime the
//! process already runs.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Where the inter-agent work runs; stops its thread, if it has one, when dropped.
#[derive(Debug)]
pub(crate) struct Lane {
    handle: Handle,
    /// The lane's own thread and what stops it; `None` on the process's runtime.
    thread: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Lane {
    /// The lane at `nice`: a thread of its own where that differs from the
    /// calling thread's nice value, the calling runtime otherwise. Must be
    /// called on a runtime.
    pub(crate) fn start(nice: Option<i32>) -> io::Result<Lane> {
        match nice {
            Some(nice) if nice != thread_nice() => Lane::thread(nice),
            _ => Ok(Lane { handle: Handle::current(), thread: None }),
        }
    }

    fn thread(nice: i32) -> io::Result<Lane> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("inter-agent".into()).spawn(move || {
            set_thread_nice(nice);
            runtime.block_on(async {
                let _ = stopped.await;
            });
            // Dropping the runtime here, off any async context, cancels what still runs on it.
        })?;
        Ok(Lane { handle, thread: Some((stop, thread)) })
    }

    /// Its runtime: for listeners and clients whose I/O the lane drives.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `work` on the lane and waits for its output; `None` if the lane
    /// stopped first (the process is shutting down).
    pub(crate) async fn run<F>(handle: &Handle, work: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn(work).await.ok()
    }

    /// Whether the lane has a thread of its own.
    #[cfg(test)]
    fn is_own_thread(&self) -> bool {
        self.thread.is_some()
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.thread.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// The calling thread's nice value.
fn thread_nice() -> i32 {
    // SAFETY: getpriority(2) on the calling thread (`who` 0 is the caller on
    // Linux, where a nice value belongs to a thread); no memory passed.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Sets the calling thread's nice value. Raising a priority needs root or
/// `CAP_SYS_NICE`; without it the lane keeps the process's, and says so.
fn set_thread_nice(nice: i32) {
    // SAFETY: setpriority(2) on the calling thread only; no memory passed.
    let set = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if set != 0 {
        let err = io::Error::last_os_error();
        tracing::warn!(
            nice,
            actual = thread_nice(),
            %err,
            "the inter-agent lane keeps the process's CPU priority: raising it needs root or CAP_SYS_NICE"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_lane_at_another_nice_value_runs_its_work_on_a_thread_at_that_value() {
        let mine = thread_nice();
        // Lowering a priority needs no right, so the test holds for any user.
        let lower = (mine + 3).min(19);
        let lane = Lane::start(Some(lower)).unwrap();
        assert!(lane.is_own_thread());
        let (thread, nice) =
            Lane::run(lane.handle(), async { (std::thread::current().name().map(str::to_owned), thread_nice()) })
                .await
                .unwrap();
        assert_eq!(thread.as_deref(), Some("inter-agent"));
        assert_eq!(nice, lower);
        assert_eq!(thread_nice(), mine, "the calling thread keeps its own");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lane_at_the_processs_nice_value_or_none_is_the_calling_runtime() {
        let here = std::thread::current().id();
        for nice in [None, Some(thread_nice())] {
            let lane = Lane::start(nice).unwrap();
            assert!(!lane.is_own_thread(), "{nice:?}");
            let there = Lane::run(lane.handle(), async { std::thread::current().id() }).await.unwrap();
            assert_eq!(there, here, "{nice:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_on_a_stopped_lane_ends_without_an_output() {
        let lane = Lane::start(Some((thread_nice() + 1).min(19))).unwrap();
        let handle = lane.handle().clone();
        drop(lane);
        assert_eq!(Lane::run(&handle, async { 1 }).await, None);
    }
}
