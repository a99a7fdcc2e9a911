//! The HTTP contract of the booking API (CONTRACT.md), against the real sandbox over real HTTP, on SQLite and
//! PostgreSQL. Most tests drive the router in-process; the concurrency storms go through a real port.

mod api;
mod crashes;
mod cron;
mod data_browser;
mod events;
mod harness;
mod headers;
mod hostile;
mod import_upload;
mod imports;
mod imports_pages;
mod jobs;
mod jobs_pages;
mod operators;
mod operators_pages;
mod probes;
mod search;
mod site;
mod site_hostile;
mod site_interrupted;
mod site_sessions;
mod storms;
mod visitor;
