mod closed_model;
mod open_model;
