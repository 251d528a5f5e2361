mod index_queries;
