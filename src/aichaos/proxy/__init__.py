"""The chaos reverse proxy: out-of-process apps point their SDK's base URL at it.

    from aichaos.proxy import serve_proxy

    async with serve_proxy(session, host="127.0.0.1", port=0) as proxy:
        proxy.backend_url("openai")    # "http://127.0.0.1:54321/openai"

See docs/proxy.md.
"""

from aichaos.proxy.app import ProxyApp
from aichaos.proxy.server import (
    AdminExposedError,
    RunningProxy,
    serve_proxy,
    serve_proxy_in_thread,
)

__all__ = ["AdminExposedError", "ProxyApp", "RunningProxy", "serve_proxy", "serve_proxy_in_thread"]
