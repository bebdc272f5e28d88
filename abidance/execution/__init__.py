"""Execution: the order state machine, venue clients, local exit orders, reconciliation."""
