//! skybook-clients against the real sandbox over real HTTP (one test binary; one sandbox per test).

mod feeds;
mod oauth;
mod payments;
mod support;
