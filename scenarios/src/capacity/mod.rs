//! Capacity planning: the knee of a topology (the highest arrival rate that
//! meets every SLO, and the users it means by Little's law), the Universal
//! Scalability Law fitted over replica counts, and the statistics that
//! compare two protocols' latencies. [`search::run`] runs the search
//! behind `q2o-bench capacity`; [`figures`] is what it found.

pub mod figures;
pub mod knee;
mod report;
pub mod search;
pub mod stats;
pub mod usl;
