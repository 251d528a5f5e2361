mod census;
mod planning;
mod runner;
mod schema;
