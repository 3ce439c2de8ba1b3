"""The web console for tenant admins and staff (server-rendered pages with HTMX)."""
