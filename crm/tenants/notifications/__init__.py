"""Notifications: what users are told (reminders, digests, birthdays), stored for the console
and handed to the channels each user chose (e-mail, Telegram)."""
