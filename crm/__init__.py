"""Relay CRM: a multi-tenant CRM. See README.md and docs/ for the architecture."""
