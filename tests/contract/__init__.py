"""Contract tests: one suite per interface, run against every built-in backend."""
