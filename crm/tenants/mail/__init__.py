"""Outgoing mail. Until the mailing issue brings SMTP, messages wait in an outbox table."""
