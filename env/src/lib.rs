/*!
The environments of a run: where the topology's services run, and how they
are started, hurt and stopped.

# Brief overview

* [`topology::Topology`] is a scenario's `[topology]`: which services a phase
  runs; [`topology::FaultAction`] what a fault does to one of them.
* [`plan::plan`] turns a topology into [`plan::ServicePlan`]s, pure data:
  arguments with symbolic ports, typed config files ([`config_files`]
  renders them), readiness and scrape jobs.
* Two backends resolve the plan and start it: [`local::LocalBackend`] (child
  processes on 127.0.0.1 under a [`supervisor::Supervisor`]) and
  [`docker::DockerBackend`] (containers through testcontainers). Both
  implement [`backend::Backend`]: faults, recoveries, process ids, stop.
* [`environment::Environment`] is a started topology: its
  [`endpoints::Endpoints`], the backend, and a supervisor for the harness's
  own processes.
* [`prometheus::Prometheus`] is a run's own Prometheus, a harness process
  like the load generator: its config, its lifecycle, its HTTP API.
* [`cpu`] reads what processes spent from the kernel's accounting;
  [`resources`] samples every process tree and the machine once a second
  and says where the capacity went and what saturated first.

This crate knows nothing about gates, SLOs, load or reports.
*/

pub mod backend;
pub mod balancer;
pub mod binaries;
pub mod config_files;
pub mod cpu;
pub mod docker;
pub mod endpoints;
pub mod environment;
pub mod error;
pub mod local;
pub mod plan;
pub mod ports;
pub mod priority;
mod proc_stat;
pub mod prometheus;
pub mod resources;
pub mod supervisor;
pub mod topology;

pub use environment::{EnvKind, Environment};
pub use error::EnvError;
