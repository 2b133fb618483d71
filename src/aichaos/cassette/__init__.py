"""Cassettes: real provider exchanges recorded once, replayed offline with faults on top.

* `format`: the versioned, line-oriented file format (one exchange per JSON line);
* `redaction`: what of a request and an answer may be written at all (no credentials);
* `matching`: which recorded exchange answers a request, and the closest one on a miss;
* `recording`: the tap an exchange life feeds with the upstream's answer as it arrives;
* `replay`: recorded answers as `Reply`s (bytes and recorded pauses), like the mock's;
* `har`: cassettes made from HAR files (browser developer tools, mitmproxy).

See docs/record-replay.md.
"""

from __future__ import annotations

from aichaos.cassette.format import CassetteError, Interaction, read_cassette_dir
from aichaos.cassette.recording import CassetteTap, CassetteWriter, record_dir_problem
from aichaos.cassette.replay import ReplaySource

__all__ = [
    "CassetteError",
    "CassetteTap",
    "CassetteWriter",
    "Interaction",
    "ReplaySource",
    "read_cassette_dir",
    "record_dir_problem",
]
