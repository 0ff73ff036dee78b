"""Alerts: the outbox's events become deliveries to watchers (``alerts.dispatch``), rendered as messages
people like reading (``alerts.render``), sent through apprise with retries and a record of every attempt."""
