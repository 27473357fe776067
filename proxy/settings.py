"""Runtime settings: defaults, then a TOML file (``SARGS_CONFIG``), then ``SARGS_*`` variables.

Every setting is documented in docs/configuration.md with its default; keep the two true.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parent.parent
"""The project checkout (policies/ and extension/ sit beside the package)."""


def _default_policy() -> Path:
    return ROOT / "policies" / "institutions" / "example"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SARGS_", extra="forbid", toml_file=os.environ.get("SARGS_CONFIG")
    )

    policy: Path = Field(default_factory=_default_policy, description="Policy directory.")
    var_dir: Path = Field(default=Path("var"), description="State: database, CA, spool, cache.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at VAR_DIR/sargs.db. "
        "Use postgresql+psycopg://user:pass@host/db for several service nodes.",
    )
    # Gateway
    gateway_host: str = Field(default="127.0.0.1", description="Gateway listen address.")
    gateway_port: int = Field(default=8080, description="Gateway listen port.")
    upstream_proxy: str = Field(
        default="", description="Chain to this upstream proxy (http://host:port); empty: direct."
    )
    ca_cert: Path | None = Field(
        default=None, description="Institution CA certificate (PEM) instead of a generated one."
    )
    ca_key: Path | None = Field(default=None, description="Private key of CA_CERT (PEM).")
    gateways: list[str] = Field(
        default_factory=list,
        description="Gateways browsers use, as host:port, in failover order (the PAC file "
        "lists them all); empty: GATEWAY_HOST:GATEWAY_PORT. Env: a JSON list.",
    )
    pac_fail_closed: bool = Field(
        default=False,
        description="The PAC file sends catalog hosts to the gateways and, when none answers, "
        "nowhere (a blackhole, PROXY 127.0.0.1:9) instead of DIRECT.",
    )
    gateway_metrics_host: str = Field(
        default="127.0.0.1", description="Where the gateway serves Prometheus /metrics."
    )
    gateway_metrics_port: int = Field(
        default=9180, ge=0, le=65535,
        description="Port of the gateway's /metrics (never the proxy port); 0: off.",
    )
    gateway_id: str = Field(
        default="",
        description="This gateway's name in the events it reports; empty: HOSTNAME:GATEWAY_PORT.",
    )
    gateway_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret between gateways and service nodes (Authorization: Bearer) "
        "for the grant bundle, its change stream and event delivery, required from every "
        "address (loopback too); empty: generated once into VAR_DIR/gateway.token (one node, "
        "or nodes sharing that file).",
    )
    # Service
    service_host: str = Field(default="127.0.0.1", description="Service listen address.")
    service_port: int = Field(default=8081, description="Service listen port.")
    service_url: str = Field(
        default="",
        description="How gateways and browsers reach the service; empty: "
        "http://SERVICE_HOST:SERVICE_PORT.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Keys the service's CSRF tokens (the same on every service node); empty: "
        "generated once into VAR_DIR/secret.key.",
    )
    extension_origins: list[str] = Field(
        default_factory=list,
        description="Browser-extension origins that may read /api/v1/me with the user's login "
        "(chrome-extension://ID of the managed extension, moz-extension://*); empty: no "
        "extension. Env: a JSON list.",
    )
    check_origins: list[str] = Field(
        default_factory=list,
        description="Web-page origins (scheme://host[:port], exact) that may call "
        "/api/v1/check cross-site besides the catalog platforms' https pages and the "
        "extension origins, e.g. an intranet portal; empty: none. Env: a JSON list.",
    )
    request_lapse_hours: float = Field(
        default=72, gt=0,
        description="Pending access requests nobody decided lapse after this many hours.",
    )
    audit_retention_days: int = Field(
        default=0, ge=0,
        description="Prune audit entries older than this many days (a checkpoint entry keeps "
        "the chain verifiable); 0 keeps everything.",
    )
    session_hours: float = Field(
        default=8, gt=0, description="Service login sessions end after this many hours."
    )
    max_body_bytes: int = Field(default=64 * 1024, description="Largest API request body.")
    check_seconds: float = Field(
        default=2.0, gt=0,
        description="CPU seconds one draft check may take (in a worker process, off the "
        "event loop); a check past it is answered 503.",
    )
    max_pending_requests: int = Field(
        default=3, ge=1,
        description="Pending access requests one user may have open at once (a repeat for "
        "the same platform updates the pending one instead).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of load balancers / reverse proxies whose "
        "X-Forwarded-For and Forwarded headers are believed; empty: none (the socket "
        "address is the client). Env: a JSON list.",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token the service's /metrics asks for; empty: generated once "
        "into VAR_DIR/metrics.token.",
    )
    service_ca_file: Path | None = Field(
        default=None,
        description="The CA certificate the /ca page offers (PEM); empty: CA_CERT, else the "
        "gateway's generated one in VAR_DIR/mitmproxy/ (the shared var dir).",
    )
    # Review before posting
    review_key_file: Path | None = Field(
        default=None,
        description="The key that seals drafts sent for review (AES-256-GCM; made at "
        "first run, mode 0600); empty: VAR_DIR/review.key.",
    )
    review_key: SecretStr = Field(
        default=SecretStr(""),
        description="The review key (64 hex digits) instead of the key file; every service "
        "node sharing a database needs the same one.",
    )
    # Audit chain
    audit_key_file: Path | None = Field(
        default=None,
        description="The audit chain's HMAC keys, oldest first (made at first run, mode "
        "0600); empty: VAR_DIR/audit.keys.",
    )
    audit_key: SecretStr = Field(
        default=SecretStr(""),
        description="The current audit key (64 hex digits) instead of the key file's last "
        "line; the file's keys still verify older entries.",
    )
    audit_anchor_file: Path | None = Field(
        default=None,
        description="Where signed anchors of the audit chain's head are appended (make it "
        "append-only or ship it off the host); empty: VAR_DIR/audit-anchors.jsonl.",
    )
    audit_anchor_minutes: float = Field(
        default=15, ge=0,
        description="The service anchors the audit chain this often; 0: only by hand "
        "(sargs audit anchor).",
    )
    # Notifications
    smtp_host: str = Field(default="", description="SMTP server for e-mail; empty: no e-mail.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_from: str = Field(default="sargs@localhost", description="Sender address.")
    # Directory identity (docs/identity.md)
    keytab: Path | None = Field(
        default=None,
        description="Keytab with the HTTP/ service principal(s) for Negotiate sign-on; "
        "empty: KRB5_KTNAME or the system default (/etc/krb5.keytab).",
    )
    kerberos_realms: list[str] = Field(
        default_factory=list,
        description="Kerberos realms whose users may sign on by Negotiate (EXAMPLE.ORG); "
        "empty: Negotiate is off. Env: a JSON list.",
    )
    ldap_url: str = Field(
        default="",
        description="Directory for groups → roles (ldap://dc1.example.org, ldaps://…; several "
        "separated by spaces fail over); empty: Negotiate users get the roles of the "
        "store's user of the same name.",
    )
    ldap_bind_dn: str = Field(default="", description="Bind account's DN; empty: anonymous.")
    ldap_bind_password: SecretStr = Field(
        default=SecretStr(""), description="Bind account's password."
    )
    ldap_base: str = Field(default="", description="Search base for accounts (DC=example,DC=org).")
    ldap_group_base: str = Field(
        default="", description="Search base for groups; empty: LDAP_BASE."
    )
    ldap_user_filter: str = Field(
        default="",
        description="Account filter; {user} is the principal's name, {principal} the whole "
        "principal (both escaped); empty: sAMAccountName={user} (AD) or uid={user}.",
    )
    ldap_kind: Literal["auto", "ad", "ldap"] = Field(
        default="auto",
        description="ad (in-chain matching rule, primaryGroupID), ldap (client-side nested "
        "search), or auto (read from the root DSE).",
    )
    ldap_disabled_filter: str = Field(
        default="",
        description="A filter matching disabled accounts, besides userAccountControl, "
        "accountExpires, pwdAccountLockedTime and shadowExpire; empty: none.",
    )
    ldap_cache_seconds: float = Field(
        default=300, ge=0,
        description="How long an account's groups are reused before the directory is asked "
        "again (and how long it keeps its last known groups when the directory is down).",
    )
    ldap_timeout_seconds: float = Field(
        default=5, gt=0, description="Connect and answer timeout per directory request."
    )
    ldap_max_depth: int = Field(
        default=8, ge=1, le=64, description="Most levels of nested groups followed (not AD)."
    )
    # Logs
    log_file: Path | None = Field(
        default=None, description="Decision/event JSON lines; empty: standard error."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'sargs.db').resolve()}"

    @property
    def audit_keys_path(self) -> Path:
        return self.audit_key_file or self.var_dir / "audit.keys"

    @property
    def review_key_path(self) -> Path:
        return self.review_key_file or self.var_dir / "review.key"

    @property
    def audit_anchors_path(self) -> Path:
        return self.audit_anchor_file or self.var_dir / "audit-anchors.jsonl"

    @property
    def gateway_list(self) -> list[str]:
        """The gateways browsers should use (the PAC file), in failover order."""
        return self.gateways or [f"{self.gateway_host}:{self.gateway_port}"]

    @property
    def gateway_name(self) -> str:
        """``gateway_id``, or HOSTNAME:GATEWAY_PORT."""
        import socket

        return self.gateway_id or f"{socket.gethostname()}:{self.gateway_port}"

    @property
    def public_service_url(self) -> str:
        return (self.service_url or f"http://{self.service_host}:{self.service_port}").rstrip("/")


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
