"""The wire surfaces of shoal: each protocol decodes, calls `QueueService`, and encodes.

Protocols depend on `shoal.core` only and never on each other.
"""

from __future__ import annotations
