"""Live visibility: ``stegwatch serve`` ingests production scan events, aggregates them in rolling windows,
raises production alerts through the monitor's sinks, and serves a self-updating dashboard and Prometheus metrics."""
