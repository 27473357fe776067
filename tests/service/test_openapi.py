"""The OpenAPI document is kept true: every /api/ route is in it, and nothing else."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from proxy.service import openapi
from proxy.service.app import create_app
from proxy.settings import Settings
from tests.support.service import running_service


def test_every_api_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    app = create_app(Settings(var_dir=tmp_path))
    routes = openapi.api_routes(app)
    spec = openapi.build(app)
    documented = {(method.upper(), path) for path, ops in spec["paths"].items()
                  for method in ops}
    missing = routes - set(openapi.OPERATIONS)
    assert not missing, f"routes under /api/ without an entry in openapi.OPERATIONS: {missing}"
    stale = set(openapi.OPERATIONS) - routes
    assert not stale, f"openapi.OPERATIONS entries without a route: {stale}"
    assert documented == routes


async def test_the_document_is_served_and_names_its_models(tmp_path: Path, store_url: str
                                                           ) -> None:
    async with running_service(tmp_path, store_url) as svc, aiohttp.ClientSession() as s:
        r = await s.get(svc.url + "/api/v1/openapi.json")
        assert r.status == 200
        spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    create = spec["paths"]["/api/v1/exceptions"]["post"]
    assert set(create["responses"]) >= {"201", "422", "503"}
    body = spec["components"]["schemas"]["ExceptionIn"]
    assert set(body["required"]) == {"platform", "access", "duration", "justification"}
    assert "/api/v1/check" in spec["paths"]
