"""The merchant dashboard: server-rendered pages under ``/dashboard/`` that
compose the rooms' services (cards, stamps, accounts, webhooks) for owners and
staff signed in with a password. See docs/dashboard.md."""
