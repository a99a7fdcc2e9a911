//! The supervisor and the queue worker, against real databases (both engines) for the queue.

mod cron;
mod queue;
mod supervisor;
mod wakeups;
