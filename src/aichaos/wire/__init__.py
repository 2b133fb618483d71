"""Sans-IO wire primitives shared by the mock, the fault engine and every injection point.

Nothing in this package performs I/O: it describes requests, responses and the
parts a response body is made of, so that one implementation serves the sync and
async httpx/httpx2 transports and the proxy alike.
"""

from aichaos.wire.exchange import Abort, Hang, Part, Pause, Reply, RequestInfo
from aichaos.wire.sse import SSEEvent, SSEParser

__all__ = ["Abort", "Hang", "Part", "Pause", "Reply", "RequestInfo", "SSEEvent", "SSEParser"]
