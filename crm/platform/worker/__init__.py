"""Background work on Dramatiq: the broker, our ``actor()`` wrapper, the worker and
scheduler processes, and their metrics.

All background work is a ``platform.timers`` row (the schedule and the transactional
outbox, see crm/platform/timers.py): ``crm scheduler`` claims due rows and sends one
``timers.run`` message each; ``crm worker`` takes the timer and runs its handler. Nothing
here runs at import time: brokers and actors are made by the processes that need them.
"""
