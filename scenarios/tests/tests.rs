mod runner;
mod schema;
