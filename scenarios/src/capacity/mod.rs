//! Capacity planning: the knee of a topology (the most concurrent users of
//! the scenario's own journeys that meet every SLO a step can judge), the
//! Universal Scalability Law fitted over replica counts, and the statistics
//! that compare two protocols' latencies. [`search::run`] runs the search
//! behind `q2o-bench capacity`; [`figures`] is what it found.

pub mod figures;
pub mod knee;
mod report;
pub mod search;
pub mod stats;
pub mod usl;
