"""The ClickHouse store: schema and migrations, the served embedded store, the writer, the read API."""
