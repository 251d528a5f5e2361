//! Capacity planning: the knee of a topology (the highest arrival rate that
//! meets every SLO, and the users it means by Little's law), the Universal
//! Scalability Law fitted over replica counts, and the statistics that
//! compare two protocols' latencies.

pub mod knee;
pub mod stats;
pub mod usl;
