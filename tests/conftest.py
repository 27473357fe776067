"""Shared pytest set-up: plugins with fixtures every part may use."""

pytest_plugins = ["tests.support.postgres", "tests.support.kdc", "tests.support.slapd"]
