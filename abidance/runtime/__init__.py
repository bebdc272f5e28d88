"""Running the node as a service: assembly, state on disk, signals, systemd, logs."""
