"""Test support shipped with shoal: the store conformance suite and pytest fixtures.

Other store implementations (your own included) prove themselves by running
`StoreContract` and `StoreProperties` unchanged.
"""

from __future__ import annotations

from shoal.testing._jobs import T0, StoreFactory, make_job

__all__ = ["T0", "StoreFactory", "make_job"]
