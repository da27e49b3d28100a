"""The TCP text protocol, compatible with Jobatator's clients.

`codec` turns bytes into `Command`s and replies into bytes (sans-IO); `commands` holds the
command table and the pre-handler checks; `replies` the reply kinds and the Go-shaped JSON.
`session` runs one client's commands against the service (no sockets), `dispatch` hands jobs
to subscribed connections, `server` is the asyncio listener (`serve_tcp`) and `gateway` the
HTTP `/gateway` route. See docs/tcp-protocol.md for the protocol as shoal speaks it.
"""

from __future__ import annotations
