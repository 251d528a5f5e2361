mod metric_names;
