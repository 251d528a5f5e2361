mod census;
mod cluster;
mod kubernetes;
mod planning;
mod runner;
mod schema;
