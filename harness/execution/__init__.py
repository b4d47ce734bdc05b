"""Execution: the Backend protocol and its docker/local backends, the job loop, the run session,
host evidence (telemetry, contention) and the data the payload reads."""
