/*!
What the q2o services share, and nothing else: no service logic lives here.

# Brief overview

* [`config`] loads a binary's typed configuration from a TOML file; flags and
  environment variables are layered on top by each binary's clap parser.
* [`telemetry`] sets up tracing, serves `/metrics` and waits for the shutdown signal.
* [`metrics`] holds every metric name the dashboards and alerts quote, and the
  HTTP and gRPC instrumentation that records them.
* [`domain`] holds the records that cross service boundaries (`Project`, `Task`,
  `AgentEvent`, ...) and their conversions to and from the protobuf messages.
* `kafka` (feature `kafka`) sets up the activity topic, produces events and runs
  consumer groups at least once.
* [`grpc_server`] serves tonic's routes on hyper's HTTP/2 connections, answering
  a call that needs no wait inside the connection's own poll.
* [`store`] is the system's state and task queue behind one trait, [`store::Store`],
  with a Redis implementation (the real stack) and an in-memory one (the phase0
  single-process baseline).
*/

pub mod config;
pub mod domain;
pub mod grpc_server;
pub mod huge_pages;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log_storm;
pub mod metrics;
pub mod net;
pub mod runtime;
pub mod service_key;
pub mod store;
pub mod telemetry;
