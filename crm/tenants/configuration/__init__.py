"""A tenant's configuration, seeded from its edition: pipelines, roles, outcomes, fields."""
