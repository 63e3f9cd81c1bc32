"""What the tests' HTTP clients of the processes they start on loopback share.

Those processes speak plain HTTP, yet httpx makes every client a TLS context of its own, loading
the CA bundle again: some 20 ms of CPU a client, and the tests make thousands of clients.
"""

from __future__ import annotations

import ssl

TLS = ssl.create_default_context()
"""Passed as `verify=` to the clients of loopback processes."""
