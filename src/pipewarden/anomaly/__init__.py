"""The anomaly detector: row scores, batch health monitors, circuit breaker."""

# where breaker state and batch history live when no store is given (a DuckDB file)
DEFAULT_STORE = "duckdb://.pipewarden/state.duckdb"
