mod planning;
mod runner;
mod schema;
