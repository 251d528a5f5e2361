mod open_model;
