//! Capacity planning: the knee of a topology (the highest arrival rate that
//! meets every SLO, and the users it means by Little's law), the Universal
//! Scalability Law fitted over replica counts, and the statistics that
//! compare two protocols' latencies. [`plan::capacity`] runs the search
//! behind `q2o-bench capacity`.

pub mod knee;
pub mod plan;
mod report;
pub mod stats;
pub mod usl;
