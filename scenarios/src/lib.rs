/*!
The scenario runner behind `just bench phaseN` (bin `q2o-bench`).

# Brief overview

* [`scenario::Scenario`] is a gate scenario file: the users, the topology,
  the faults and the gate criteria; [`scenario::Overrides`] are the sizes a
  command line changes. [`scenario_file::ScenarioFile`] tells a gate file
  from a comparison file by parsing it.
* A [`session::Session`] is what every kind of run shares: the topology
  started by `q2o-env`, optionally the run's Prometheus, and
  the command's [`session::Interrupt`]; a [`run_folder::RunFolder`] is where
  it writes. [`error::RunError`] says why a run failed.
* [`gate_run::run`] drives one gate run: [`loadgen::Users`], the faults on
  time ([`faults`]), the [`gate::Evidence`] gathered from Prometheus, Redis
  and promtool ([`evidence`]), the verdicts ([`gate::judge`], pure), and the
  report that `q2o-report` writes: `summary.json`, `report.md`, `report.html`
  and `junit.xml`.
* [`compare`] runs REST against gRPC in alternating open-model rounds
  ([`loadgen::OpenStep`]); [`capacity`] searches the knee at several replica
  counts and fits the Universal Scalability Law.
* [`regression`] holds a run against a baseline run (`q2o-bench report --baseline`).
* [`rules`] hands the scenarios' gates to `q2o-slo`, which generates `alerts/`,
  `dashboards/grafana/` and the `PrometheusRule` manifest.
*/

pub mod capacity;
pub mod compare;
pub mod cost;
pub mod error;
pub mod evidence;
pub mod faults;
pub mod gate;
pub mod gate_run;
pub mod judge;
pub mod loadgen;
mod progress;
pub mod reference_work;
pub mod regression;
pub mod render;
pub mod rules;
pub mod run_folder;
pub mod scenario;
pub mod scenario_file;
pub mod session;
