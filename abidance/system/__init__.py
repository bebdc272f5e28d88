"""The kernel: one builder of a trading node's engines for every mode (docs/architecture.md)."""
