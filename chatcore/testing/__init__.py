"""Test helpers for chatcore and for authors of third-party plugins and backends.

`chatcore.testing.server` starts real server processes on free loopback ports;
`chatcore.testing.storage_contract` holds the storage contract suite a backend subclasses;
`chatcore.testing.services` finds PostgreSQL, Redis and NATS for tests.
"""
