"""Users of a tenant: accounts, passwords, API tokens."""
