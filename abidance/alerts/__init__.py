"""Alerts that reach a person: delivery channels, grouping and rate limits, chat control, reports.

The node publishes `Alert`s on topics.ALERTS (the store records them); `AlertService` takes
them off the event loop to a delivery thread that sends them to the configured channels
(docs/alerts.md).
"""
