//! The supervisor and the queue worker, against real databases (both engines) for the queue.

mod queue;
mod supervisor;
