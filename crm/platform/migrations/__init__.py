"""Platform schema migrations, ``mNNNN_<name>.py``, applied in order by crm.platform.migrate."""
