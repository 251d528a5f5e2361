/*!
The SLI/SLO vocabulary of q2o-bench and everything generated from it.

# Brief overview

* [`sli`] is the vocabulary a gate criterion is written in: [`sli::Sli`]
  (what is measured), [`sli::Unit`], [`sli::Op`] and [`sli::Criterion`].
* [`promql`] says each SLI in PromQL over the load generator's and the
  services' series, and makes their recording rules.
* [`gates`] turns a scenario's criteria ([`gates::Gate`]) into alert rules
  labelled with its phase, with a promtool test for every alert.
* [`slos`] declares the SLOs once and makes Sloth-style recording rules,
  multi-window burn-rate and operational alerts, their tests and the
  `PrometheusRule` manifest.
* [`dashboards`] models Grafana's dashboard JSON and holds the five dashboards.
* [`alert_tests`] reads rule and test files to tell which alerts are tested.
* [`generate`] is what `just rules` writes, and where ([`rule_files`] names the files).

This crate knows nothing about processes, runs or reports: it is text in,
text out. The runner asks Prometheus the queries made here.
*/

pub mod alert_tests;
pub mod dashboards;
pub mod gates;
pub mod generate;
pub mod promql;
pub mod rule_files;
pub mod sli;
pub mod slos;
