"""The TCP text protocol, compatible with Jobatator's clients.

`codec` turns bytes into `Command`s and replies into bytes (sans-IO); `commands` holds the
command table and the pre-handler checks; `replies` the reply kinds and the Go-shaped JSON.
See docs/tcp-protocol.md for the protocol as shoal speaks it.
"""

from __future__ import annotations
