"""Monitoring over time: run history, threshold rules, alerts, dashboards."""
