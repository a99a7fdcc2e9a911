//! Integration tests of the sandbox over real HTTP: each test spawns its own sandbox on an
//! ephemeral loopback port with a fresh temporary data dir and talks to it with reqwest, like
//! skybook's clients do.

mod blobs;
mod client_jwt;
mod common;
mod echo;
mod faults;
mod feed_faults;
mod feeds;
mod oauth;
mod payments;
mod privacy;
mod restart;
