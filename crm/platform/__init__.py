"""The platform every tenant stands on: database, tenancy, migrations, editions, signup, auth."""
