//! The HTTP contract of the booking API (CONTRACT.md), against the real sandbox over real HTTP, on SQLite and
//! PostgreSQL. Most tests drive the router in-process; the concurrency storms go through a real port.

mod api;
mod crashes;
mod harness;
mod ops;
mod site;
mod site_sessions;
mod storms;
mod visitor;
