"""The online service: HTTP API, durable event log, online state, cache, registry."""
