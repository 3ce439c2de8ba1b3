"""The client card: everything about one client in one call."""
