"""Stampbook: a self-hosted, wire-compatible server for the Stamp API v1."""

__version__ = "0.1.0"
