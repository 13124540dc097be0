"""The operating-system seam: every file operation, the process lock and worker threads.

``files`` is the one narrow layer that touches the file system (tests wrap it to inject
faults); ``segment`` is an open data file on it; ``lock`` the directory's process lock;
``threads`` the store's counted calls into worker threads.
"""
