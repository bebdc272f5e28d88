"""Anomaly detection on live data: streaming detectors (detectors.py), their bus wiring (monitor.py) and their
evaluation on recorded data with injected anomalies (evaluate.py). docs/anomaly.md describes each."""
