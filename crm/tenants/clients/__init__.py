"""Clients: companies and people."""
