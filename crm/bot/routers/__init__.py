"""One router per feature, each built by its module's ``create_router()`` (a router can
belong to one dispatcher only, and nothing is built at import time);
:func:`crm.bot.dispatcher.create_dispatcher` includes them all."""
