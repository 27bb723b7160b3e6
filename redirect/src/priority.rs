//! The background threads (hits flusher, invalidation subscriber, Redis fills, the admin port) run below the
//! HTTP workers. The hits flush builds a batch of every code hit in the last interval; on a core shared with an
//! HTTP worker it held that worker off for milliseconds at a time, which was the redirect's p99 under open-loop
//! load. At nice 10 a waking worker preempts it at once, and the flush still gets every idle cycle (and a tenth
//! of a busy core), far more than it needs.
//!
//! Lowered only once the HTTP workers exist: actix starts them from a runtime thread, and a new thread inherits
//! the nice value of the thread that makes it (and cannot raise it back without privileges).

use std::{
    cell::Cell,
    sync::atomic::{AtomicBool, Ordering},
};

/// The background threads' nice value (the HTTP workers keep the process's, 0 by default).
pub const BACKGROUND_NICE: i32 = 10;

/// Set when the first HTTP worker builds its app: actix spawns every worker before it waits for any, so from
/// then on no worker can inherit a lowered priority.
static WORKERS_STARTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Called by each HTTP worker as it starts.
pub fn http_worker_started() {
    WORKERS_STARTED.store(true, Ordering::Release);
}

/// For the runtime's `on_thread_unpark`: lowers the calling runtime thread once the HTTP workers exist.
pub fn lower_background_thread() {
    if !WORKERS_STARTED.load(Ordering::Acquire) || LOWERED.get() {
        return;
    }
    LOWERED.set(true);
    if let Err(error) = lower_this_thread(BACKGROUND_NICE) {
        // Harmless: the flush merely competes with the workers as before.
        tracing::debug!(%error, "could not lower a background thread's priority");
    }
}

/// Sets the calling thread's nice value (only this thread's: on Linux each thread has one of its own).
fn lower_this_thread(nice: i32) -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("getpriority")
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = nice_of_this_thread();
        let lowered = std::thread::spawn(|| {
            lower_this_thread(BACKGROUND_NICE).expect("setpriority");
            nice_of_this_thread()
        })
        .join()
        .expect("thread");

        assert_eq!(lowered, BACKGROUND_NICE.max(before));
        assert_eq!(nice_of_this_thread(), before);
    }
}
