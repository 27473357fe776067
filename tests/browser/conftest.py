"""Browser tests: fixtures come from tests.support.browser (shared with gateway tests)."""

from tests.support.browser import (  # noqa: F401  (pytest finds fixtures by name)
    browser,
    chromium_home,
    page,
    page_errors,
    service_url,
    site,
    site_app,
    site_port,
    site_url,
    standin,
    standin_url,
)
