"""Mailings: segments of clients, templates, scheduled sends with one delivery row per recipient."""
