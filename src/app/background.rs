//! A spawned background loop (projection tailing, sweeps) that is stopped and
//! then waited for, so none of its work overlaps what follows — closing the
//! store it reads, above all.

use std::sync::{Mutex, PoisonError};

use tokio::task::JoinHandle;

#[derive(Default)]
pub struct BackgroundTask(Mutex<Option<JoinHandle<()>>>);

impl BackgroundTask {
    /// Keeps `task` until it is replaced or stopped.
    pub fn new(task: JoinHandle<()>) -> Self {
        Self(Mutex::new(Some(task)))
    }

    /// Runs `task` in place of the current one, which is aborted.
    pub fn replace(&self, task: JoinHandle<()>) {
        if let Some(old) = self.0.lock().unwrap_or_else(PoisonError::into_inner).replace(task) {
            old.abort();
        }
    }

    /// Aborts the task and waits until it has stopped (it stops at its next
    /// await point). Stopping twice, or a task never started, is a no-op.
    pub async fn stop(&self) {
        let task = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_of_a_stopped_task_runs_after_stop_returns() {
        let stopped = Arc::new(AtomicBool::new(false));
        let ran_late = Arc::new(AtomicBool::new(false));
        let started = Arc::new(tokio::sync::Notify::new());
        let (flag, late, running) = (stopped.clone(), ran_late.clone(), started.clone());
        let task = BackgroundTask::new(tokio::spawn(async move {
            running.notify_one();
            loop {
                // Busy work between await points, as a fold step is.
                std::hint::black_box((0..10_000u64).sum::<u64>());
                if flag.load(Ordering::SeqCst) {
                    late.store(true, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
            }
        }));
        started.notified().await;
        task.stop().await;
        stopped.store(true, Ordering::SeqCst);
        // The other worker would run the task now if it were still alive.
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        assert!(!ran_late.load(Ordering::SeqCst), "the task ran after stop returned");
        task.stop().await;
    }
}
