"""mitmproxy options that would open a way around the gateway's checks are refused at
start. (A module of its own: a gateway that fails to start must not share the process
with a module-scoped running one; mitmproxy keeps one master per process.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy.exceptions import OptionsError

from tests.support.gateway import fake_site, running_gateway

USERS = {"carl": ("carl-pw", ["communicator"])}


async def test_stream_large_bodies_is_refused_so_no_chunked_post_streams_past_the_check(
    tmp_path: Path,
) -> None:
    """mitmproxy's ``stream_large_bodies`` streams a request body over that size to the
    server as it arrives (for a chunked body, as soon as that much is buffered), before
    any add-on sees it whole: a post over it would reach the platform unchecked. The
    gateway refuses the option instead of starting with it."""
    async with fake_site() as site:
        with pytest.raises(OptionsError, match="stream_large_bodies"):
            async with running_gateway(tmp_path, site.port, users=USERS,
                                       options={"stream_large_bodies": "1k"}):
                pass
        assert site.seen == []
