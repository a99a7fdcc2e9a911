//! The auth proxy against the real sandbox over real sockets: token single-flight, refresh at half-life,
//! outages, upstream 401s, header handling, config errors.

mod harness;
mod proxying;
mod tokens;
mod upstreams;
