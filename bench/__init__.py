"""Benchmarks of Relay CRM: tenant provisioning and tenant migrations (see bench/RESULTS.md)."""
