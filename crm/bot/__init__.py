"""The staff Telegram bot (aiogram 3): reminders, call results, client cards."""
