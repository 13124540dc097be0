"""``aiokv serve``: the HTTP API and web page over one store (extra ``aiokv[server]``).

A Starlette app served by uvicorn. It uses aiokv's public API only, and holds one store open
for the life of the server process, so the store's process lock still keeps other processes
out. Binding an address other than loopback needs a bearer token.
"""

from __future__ import annotations

from aiokv.server.app import create_app
from aiokv.server.run import ServeRefusedError, serve

__all__ = ["ServeRefusedError", "create_app", "serve"]
