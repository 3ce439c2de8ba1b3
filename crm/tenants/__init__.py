"""The CRM each tenant runs, one folder per area; all of it lives in the tenant's own schema."""
