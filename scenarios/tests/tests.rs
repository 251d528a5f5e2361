mod knee;
mod planning;
mod runner;
mod schema;
