//! Integration tests of the gateway against real processes: redis-server, the
//! `q2o-gateway` and `q2o-agents` binaries, on free loopback ports.

mod support;

mod admission;
mod bad_input;
mod end_to_end;
mod event_log;
mod isolation;
mod rate_limit;
mod schema;
mod shutdown;
mod worker_crash;
