/*!
The scenario runner behind `just bench phaseN` (bin `q2o-bench`).

# Brief overview

* [`scenario::Scenario`] is a scenario file: the users, the topology, the
  faults and the gate criteria; [`scenario::Overrides`] are the sizes a
  command line changes.
* [`local::Environment`] starts the topology as child processes on 127.0.0.1
  under a [`supervisor::Supervisor`], which restarts what dies and stops
  everything at the end, on failure and on Ctrl-C; [`balancer`] configures
  the nginx in front of the gateway replicas. [`docker::Containers`] is the
  same topology as containers (`--env docker`).
* [`prometheus::Prometheus`] is the run's real Prometheus; [`rules`] holds the
  SLIs as PromQL and generates the recording and gate alert rules in `alerts/`.
* [`run::run`] drives one run and [`faults`] injects its faults on time; [`gate`] judges each criterion from Prometheus
  and the loadgen's exact HDR records; [`report`] writes `summary.json`,
  `report.md`, `report.html` (plotters charts inline) and `junit.xml`.
* [`dashboards`] generates the Grafana dashboards; the runner asks every panel
  query of the run's Prometheus. [`alert_tests`] counts the alerts that
  promtool tests both fire and keep quiet.
* [`regression`] holds a run against a baseline run (`q2o-bench report --baseline`).
* [`compare`] runs REST against gRPC in alternating open-model rounds
  ([`open_load`] drives one step, [`cpu`] reads what each side spent).
* [`capacity`] holds the knee search, the Universal Scalability Law fit and
  the bootstrap confidence intervals of capacity planning.
*/

pub mod alert_tests;
pub mod balancer;
pub mod capacity;
pub mod compare;
pub mod cpu;
pub mod dashboards;
pub mod docker;
pub mod faults;
pub mod gate;
pub mod local;
pub mod open_load;
mod progress;
pub mod prometheus;
pub mod regression;
pub mod report;
pub mod rules;
pub mod run;
pub mod scenario;
pub mod slo;
pub mod supervisor;
