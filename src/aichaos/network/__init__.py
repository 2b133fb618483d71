"""Network faults through Toxiproxy (the `network` fault kind's controller).

The experiment runner's seam:

    from aichaos.network import NetworkFaults, NetworkError

    net = NetworkFaults.from_faults(experiment.faults)  # ignores other kinds; net.empty if none
    await net.check()                # before the run; NetworkError -> exit 2, nothing injected
    async with net.injecting():      # around the inject phase
        ...

Needs toxiproxy-python (`pip install 'aichaos[toxiproxy]'`), imported only when used.
"""

from aichaos.network.client import NetworkError, ToxiproxyAPIError
from aichaos.network.toxiproxy import NetworkEvent, NetworkFaults, ToxicSpec

__all__ = ["NetworkError", "NetworkEvent", "NetworkFaults", "ToxicSpec", "ToxiproxyAPIError"]
