"""Test helpers for chatcore and for authors of third-party plugins and backends.

`chatcore.testing.server` starts real server processes on free loopback ports;
`chatcore.testing.storage_contract`, `media_contract` and `broker_contract` hold the contract
suites a backend subclasses;
`chatcore.testing.services` finds PostgreSQL, Redis and NATS for tests;
`chatcore.testing.brokers` runs private redis-server and nats-server processes (to restart them);
`chatcore.testing.wsclient` is a WebSocket test client; `chatcore.testing.users` makes users.
"""
