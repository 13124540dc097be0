"""The in-memory index: where each live key's newest record lies, and the byte accounting.

``keydir`` is the compact hash table (C, with a pure-Python twin), ``index`` the ``Index``
built on it. No asyncio and no I/O: the index asks its caller to read a record when it needs
to know whose it is.
"""
