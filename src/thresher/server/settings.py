"""Every setting of the server in one model: where it listens and keeps its data, and the figures it runs by.

`thresher server` and `python -m thresher.server` fill it through `thresher.config.load_settings` (flags,
then `THRESHER_SERVER_*` and the older variables, then `[server]` of `--config thresher.toml`); the
server's parts read their figures from it (`ServerContext.settings`) instead of module constants.
docs/configuration.md is generated from this model: the descriptions here are the user's documentation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from thresher.config import Outside, ThresherSettings
from thresher.model.forwarded import Network, networks
from thresher.model.ldap_rule import ldap_settings_problem
from thresher.model.lockout import Limits as LockoutLimits
from thresher.model.permissions import Role
from thresher.server.dashboard.session import IDLE_S, LIFETIME_S
from thresher.server.db.batcher import MAX_BATCH
from thresher.server.db.engine import PoolSettings
from thresher.server.dispatch import DEFAULT_LIMITS, Limits
from thresher.server.events.hub import NODE_SAMPLE_S
from thresher.server.failures import BLOCKLIST_AFTER, JOB_MAX_FAILURES, FailureLimits
from thresher.server.lifecycle import MAX_LOSSES

# The defaults below are those the parts themselves use when built without settings (tests, benches):
# spelled once, where each figure is explained.
_POOL = PoolSettings()

#: Below this a node timeout cannot work: the liveness check runs every timeout/4 (at least 0.2 s) and a
#: heartbeat is an HTTP call that a busy server may answer late.
MIN_NODE_TIMEOUT_S = 1.0
DEFAULT_PORT = 8642
#: An attempt its agent does not mention may stay live this long (a report may be on its way), at most.
LOST_GRACE_MAX_S = 10.0


def node_timeout_error(node_timeout: float) -> str | None:
    """Why a node timeout is refused, or None."""
    if not math.isfinite(node_timeout):
        return "the node timeout must be a number of seconds"
    if node_timeout < MIN_NODE_TIMEOUT_S:
        return (f"a node timeout of {node_timeout:g} s is too short (the least is {MIN_NODE_TIMEOUT_S:g} s): "
                "nodes would be declared down between two heartbeats")
    return None  # agents learn the timeout when they register and beat three times within it


class ServerSettings(ThresherSettings):
    """Settings of a Thresher server (`thresher server`, `python -m thresher.server`)."""

    model_config = SettingsConfigDict(env_prefix="THRESHER_SERVER_")

    # -- where --
    db: Annotated[str | None, Outside(flag="--db")] = Field(
        None, description="Database URL (`postgresql://user@host/thresher`); an SQLite file `thresher.db` in the "
                          "data folder when not set.")
    host: Annotated[str, Outside(flag="--host")] = Field(
        "127.0.0.1", description="Address to listen on (`0.0.0.0` for every interface).")
    port: Annotated[int, Outside(flag="--port")] = Field(
        DEFAULT_PORT, ge=0, le=65535, description="Port to listen on; 0 picks a free one (`server.json` in the "
                                                  "data folder tells which).")
    data_dir: Annotated[Path | None, Outside(flag="--data")] = Field(
        None, description="Data folder: tokens, the session secret, `server.json` and the SQLite file; the "
                          "platform's user data folder when not set.")

    tls_cert: Annotated[Path | None, Outside(flag="--tls-cert")] = Field(
        None, description="PEM file of the server's TLS certificate (its chain after it): with `tls_key`, the "
                          "server answers HTTPS only. Agents and clients verify it against the system's CAs or "
                          "their `--ca-file` (README, TLS).")
    tls_key: Annotated[Path | None, Outside(flag="--tls-key")] = Field(
        None, description="PEM file of the TLS certificate's private key (unencrypted); set with `tls_cert`.")

    # -- nodes --
    node_timeout_s: Annotated[float, Outside(flag="--node-timeout")] = Field(
        60.0, description="Seconds of silence before a node is declared down and its tasks go back to ready "
                          f"(at least {MIN_NODE_TIMEOUT_S:g}; agents heartbeat three times within it).")
    lost_grace_s: float | None = Field(
        None, ge=0, description="Seconds an attempt its agent no longer mentions may stay live before it is "
                                "lost (a report may be on its way); the smaller of "
                                f"{LOST_GRACE_MAX_S:g} s and the node timeout when not set.")

    task_max_losses: int = Field(
        MAX_LOSSES, ge=1, description="A task lost this many times (its node went down, its agent restarted or was "
                             "stopped, or its node was disabled while running it) fails, with that reason, "
                             "instead of going back to ready: a task that crashes or hangs its node must not "
                             "take the farm down one node after another. A retry gives it a fresh count.")
    blocklist_after: int = Field(
        BLOCKLIST_AFTER, ge=1, description="Failed attempts of a job on one node after which that node gets none "
                                           "of the job's tasks (the job's blocklist), for layers that do not set "
                                           "`blocklist_after`; `thresher blocklist JOB --clear` lets it back.")
    job_max_failures: int = Field(
        JOB_MAX_FAILURES, ge=1, description="Failed attempts of a job after which it starts nothing new (paused, "
                                            "with the reason), for jobs that do not set `max_failures`; a retry "
                                            "or resume starts the count again.")

    # -- retention (`server/retention.py`) --
    archive_after_days: float = Field(
        30.0, ge=0, description="Days after it finished that a job is archived: it leaves the lists and keeps "
                                "its statistics on the job row; its tasks, attempts and logs are deleted. 0: never.")
    delete_archived_after_days: float = Field(
        180.0, ge=0, description="Days after it was archived that a job is deleted with every row it had. 0: never.")
    audit_keep_days: float = Field(
        90.0, ge=0, description="Days the audit log keeps each entry (every state-changing call, refusals "
                                "included); older ones are deleted by the housekeeping leader. 0: for ever.")
    retention_every_s: float = Field(
        60.0, gt=0, description="Seconds between two retention passes; each archives and deletes at most "
                                "500 jobs, so a backlog is worked off without stalling the server.")
    log_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Bytes of an attempt's log kept at most: past it the first 40% "
                                               "and the newest 60% are kept and the middle is dropped (the log "
                                               "shows a line saying how many bytes were cut). The agent's "
                                               "offsets are acknowledged as if everything was stored.")
    log_page_max_bytes: int = Field(
        1024 * 1024, ge=4096, le=64 * 1024 * 1024,
        description="Bytes of a log one read answers at most (`GET /attempts/{id}/log`: a larger `limit` is "
                    "cut to it; the answer says the next offset and whether more is there), so what a read "
                    "costs the server does not grow with the log.")

    # -- requests (`server/body_limit.py`) --
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=64 * 1024, description="Largest request body taken, in bytes (a job submit has its "
                                                   "own limit): a larger one is answered 413 naming the limit, "
                                                   "before anything reads it. An agent's log piece is at most "
                                                   "256 KiB of text (about 1.5 MB as JSON at worst).")
    max_submit_body_bytes: int = Field(
        32 * 1024 * 1024, ge=64 * 1024, description="Largest job spec taken by `POST /api/v1/jobs`, in bytes "
                                                    "(a spec listing a million frames one by one is about 7 MB; "
                                                    "a range like `1-1000000` is a few bytes).")

    # -- studio scheduling --
    create_unknown_projects: bool = Field(
        False, description="Whether a submit naming a project that does not exist makes it (weight 1, no caps); "
                           "off, such a submit is refused with a 422 naming `project`, so that a typo never "
                           "becomes a show of its own.")
    usage_sample_s: float = Field(
        30.0, gt=0, description="Seconds between two samples of the usage counters (what each project, folder, "
                                "stake and licence limit runs) kept for the projects page's charts and "
                                "`GET /projects/{name}/usage`.")
    usage_history_keep_s: float = Field(
        2 * 24 * 3600.0, gt=0, description="How long samples of the usage counters are kept; older ones are "
                                           "deleted (looked for every ten minutes at most).")

    # -- dispatch --
    work_wait_max_s: float = Field(
        30.0, gt=0, description="Longest time the server holds an agent's request for work open (long poll).")
    poll_heartbeat_gather_s: float = Field(
        0.25, ge=0, le=5, description="Longest time the heartbeat an idle agent's poll carries may wait to be "
                                      "written together with other agents' (the poll is held for seconds anyway): "
                                      "a big idle farm's heartbeats then cost a few write transactions a second. "
                                      "0: each at once.")
    news_recheck_s: float = Field(
        2.0, gt=0, description="How often the server looks, for all waiting agents at once, for work that no "
                               "wake-up announced (another server process made it, or a wake was missed).")
    peer_news: bool = Field(
        True, description="PostgreSQL: tell the other server processes on the database, at once, what this one "
                          "changed (LISTEN/NOTIFY: their waiting agents and dashboards hear of it without waiting "
                          "for news_recheck_s). Two connections of its own per process.")
    dispatch_candidates_per_node: int = Field(
        DEFAULT_LIMITS.candidates_per_node, ge=1, description="Most ready tasks read (and on PostgreSQL locked) for one node asking for work; "
                              "never more than its free cores.")
    dispatch_candidate_rows: int = Field(
        DEFAULT_LIMITS.candidate_rows, ge=1, description="Most ready tasks read for one batch of agents asking at the same moment.")
    tag_sets_ttl_s: float = Field(
        DEFAULT_LIMITS.tag_sets_ttl_s, ge=0, description="How long a server process trusts its copy of the farm's tag sets; a tag set "
                               "another server process added is seen within this time (at once with `peer_news`).")

    # -- database --
    write_batch_max_calls: int = Field(
        MAX_BATCH, ge=1, description="Most agent calls (work, reports, heartbeats) applied in one write transaction.")
    postgres_writers: int = Field(
        3, ge=1, description="PostgreSQL: threads that apply agent calls (while one waits on a round trip "
                             "another works).")
    postgres_pool_size: int = Field(
        _POOL.size, ge=1, description="PostgreSQL: connections kept open (worker threads, writers and housekeeping "
                              "all fit, so a busy server never closes one only to open another).")
    postgres_pool_overflow: int = Field(
        _POOL.overflow, ge=0, description="PostgreSQL: connections opened beyond the pool under a burst.")
    postgres_ping_after_idle_s: float = Field(
        _POOL.ping_after_idle_s, ge=0, description="PostgreSQL: a connection idle this long is checked before use (the database "
                               "may have restarted); one in steady use is not, saving a round trip.")
    statistics_min_changed_rows: int = Field(
        5_000, ge=0, description="PostgreSQL: changed task rows below which the server does not re-analyze "
                                 "the tasks table itself.")
    statistics_changed_fraction: float = Field(
        0.2, ge=0, description="PostgreSQL: fraction of the task rows that must have changed (or died) before "
                               "the server re-analyzes (and vacuums) the tasks table.")

    # -- people --
    metrics_token: str | None = Field(
        None, min_length=16, description="A secret a Prometheus scraper sends as `Authorization: Bearer <token>` to "
                                         "read `/metrics` (nothing else); admins may read it without. Not "
                                         "set: admins only (docs/metrics.md).")
    token_cache_s: float = Field(
        60.0, ge=0, description="How long a server process trusts a token it looked up; a token revoked in "
                                "another server process stops working within this time.")
    session_idle_s: float = Field(
        IDLE_S, gt=0, le=IDLE_S, description="A dashboard session unused this long is over (at most 12 h).")
    session_lifetime_s: float = Field(
        LIFETIME_S, gt=0, le=LIFETIME_S,
        description="A dashboard session ends this long after its login, used or not (at most 7 days).")
    artist_max_priority: int = Field(
        50, ge=0, le=1000, description="The highest priority an artist may give their own jobs (at submit or "
                                       "later); wranglers and admins set any.")
    public_api_docs: bool = Field(
        False, description="Whether `/docs`, `/redoc` and `/openapi.json` open without logging in; off, they "
                           "need a dashboard session or a token like every call.")
    token_max_days: float = Field(
        365.0, gt=0, description="The longest a personal token may live (days); a token asked for without an "
                                 "expiry gets this.")
    login_max_failures: int = Field(
        5, ge=0, description="Failed password logins for one user name within `login_failure_window_s` that lock "
                             "it for `login_lockout_s` (API, dashboard, `thresher login`; 0: never). An admin "
                             "lifts a lock with `thresher user unlock`.")
    login_max_failures_per_address: int = Field(
        20, ge=0, description="Failed password logins from one address (any user names) within "
                              "`login_failure_window_s` that lock that address for `login_lockout_s` (0: never).")
    login_failure_window_s: float = Field(
        900.0, gt=0, description="The window in which failed logins count towards a lockout.")
    login_lockout_s: float = Field(
        900.0, gt=0, description="How long a lockout lasts after the failure that set it.")
    trusted_proxies: list[str] = Field(
        ["127.0.0.1", "::1"], description="Addresses or networks (`10.0.0.0/8`) of reverse proxies whose "
        "`X-Forwarded-For` (and `X-Forwarded-Proto`) the server believes, for the address the audit log "
        "records and the per-address login lockout counts; from anybody else the header is ignored. In "
        "an environment variable, comma-separated; empty: none.")

    # -- LDAP / Active Directory (`server/ldap_auth.py`, `server/ldap_login.py`; README, LDAP) --
    ldap_urls: list[str] = Field(
        [], description="LDAP or Active Directory servers a password login is checked against, tried in turn "
                        "(`ldap://dc1.corp.example.com`, `ldaps://dc2.corp.example.com:636`; in the environment "
                        "separated by commas). None: LDAP is off and only local accounts log in.")
    ldap_user_dn: str | None = Field(
        None, description="The DN a user binds as, `{user}` standing for the login name "
                          "(`uid={user},ou=people,dc=example,dc=org`; AD: `{user}@corp.example.com`). Not set: "
                          "the user is searched for (`ldap_user_search_base`, `ldap_user_filter`).")
    ldap_user_search_base: str | None = Field(
        None, description="Where users are searched for when `ldap_user_dn` is not set (`ou=people,dc=example,dc=org`).")
    ldap_user_filter: str = Field(
        "(uid={user})", description="The filter that finds a user by login name (`{user}`, escaped); AD: "
                                    "`(sAMAccountName={user})`. Exactly one entry must match.")
    ldap_bind_dn: str | None = Field(
        None, description="A service account that searches for users (and reads groups); not set: the search "
                          "is anonymous and groups are read as the user.")
    ldap_bind_password: SecretStr | None = Field(
        None, description="The service account's password (better in `THRESHER_SERVER_LDAP_BIND_PASSWORD` than "
                          "in the file).")
    ldap_group_search_base: str | None = Field(
        None, description="Where groups are searched for (`ou=groups,dc=example,dc=org`); not set: only the "
                          "user's own `memberOf` values are read (Active Directory, OpenLDAP's memberof overlay).")
    ldap_group_filter: str = Field(
        "(|(member={dn})(uniqueMember={dn})(memberUid={user}))",
        description="The filter that finds a user's groups under `ldap_group_search_base`: `{dn}` is the user's "
                    "DN, `{user}` the login name (both escaped). AD's nested groups: "
                    "`(member:1.2.840.113556.1.4.1941:={dn})`.")
    ldap_group_name_attribute: str = Field(
        "cn", description="The attribute of a group that `ldap_roles` names it by (a `memberOf` DN is named by "
                          "its first value, `cn=artists,...` is `artists`; a full DN matches too).")
    ldap_roles: dict[str, Role] = Field(
        {}, description="Group to role (`{\"farm-admins\" = \"admin\", \"artists\" = \"artist\"}`, names "
                        "without regard to case): a user gets the highest role any of their groups maps to, "
                        "again at every login; a user in none of them is refused. In the environment: "
                        "`farm-admins=admin,artists=artist` or a JSON object.")
    ldap_start_tls: bool = Field(
        False, description="Upgrade `ldap://` connections with StartTLS before the password is sent "
                           "(`ldaps://` URLs are TLS from the start).")
    ldap_ca_file: Path | None = Field(
        None, description="PEM file of the CA(s) the LDAP servers' certificates are checked against; not set: "
                          "the system's CAs. Certificates are always verified.")
    ldap_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds to wait for an LDAP server to connect and for each answer (whole "
                                      "seconds for answers, at least 1); past "
                                      "it the next server is tried, and when none answers the login is "
                                      "answered 503 (local accounts still log in).")

    # -- dashboard --
    dashboard_tick_s: float = Field(
        1.0, gt=0, description="How often the dashboard's broadcaster reads what changed (once for all open "
                               "tabs) and sends it to them.")
    dashboard_summary_s: float = Field(
        2.0, gt=0, description="The farm summary behind the overview and node pages is read again at most this "
                               "often, for all tabs together.")
    node_sample_s: Annotated[float, Outside(env=("THRESHER_NODE_SAMPLE_S",))] = Field(
        NODE_SAMPLE_S, gt=0, description="Seconds between two samples of every node's CPU and memory for the dashboard's "
                                "history charts.")

    # -- the process --
    workers: Annotated[int, Outside(flag="--workers")] = Field(
        1, ge=1, le=64, description="Server processes serving the one address (PostgreSQL only): a parent binds "
                                    "the socket, readies the database and the data folder, then starts this many "
                                    "workers and starts again any that dies (`server/workers.py`). Each is a "
                                    "whole server process (its own connections, one of them the leader); they "
                                    "share the data folder's tokens and session secret.")
    gil_switch_interval_s: float = Field(
        0.001, gt=0, description="Python's thread switch interval: the HTTP loop and the database threads hand "
                                 "the interpreter to each other thousands of times a second, and the writer "
                                 "every agent waits for must win it back quickly (Python's default is 0.005).")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies_from_text(cls, value: Any) -> Any:
        """`10.0.0.0/8, ::1` (an environment variable) is the list ["10.0.0.0/8", "::1"]."""
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                networks([item])
            except ValueError:
                raise ValueError(f"{item!r} is not an address or a network (10.0.0.0/8)") from None
        return value

    @field_validator("node_timeout_s")
    @classmethod
    def _node_timeout(cls, value: float) -> float:
        problem = node_timeout_error(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both (--tls-cert FILE --tls-key FILE) or neither")
        return self

    @field_validator("ldap_urls", mode="before")
    @classmethod
    def _urls_from_text(cls, value: object) -> object:
        """`ldap://dc1, ldap://dc2` (an environment variable) is the list of both."""
        if isinstance(value, str):
            return [url for url in value.replace(",", " ").split() if url]
        return value

    @field_validator("ldap_roles", mode="before")
    @classmethod
    def _roles_from_text(cls, value: object) -> object:
        """An environment variable: `{"farm-admins": "admin"}` (JSON) or `farm-admins=admin,artists=artist`."""
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                return json.loads(value)
            pairs = [item.rsplit("=", 1) for item in value.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("write ldap_roles as GROUP=ROLE,GROUP=ROLE or as a JSON object")
            return {group.strip(): role.strip() for group, role in pairs}
        return value

    @model_validator(mode="after")
    def _ldap(self) -> ServerSettings:
        problem = ldap_settings_problem(self.ldap_urls, self.ldap_user_dn, self.ldap_user_search_base,
                                        self.ldap_user_filter, self.ldap_roles, self.ldap_bind_dn,
                                        self.ldap_bind_password is not None)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _grace(self) -> ServerSettings:
        if self.lost_grace_s is None:
            self.lost_grace_s = min(LOST_GRACE_MAX_S, self.node_timeout_s)
        return self

    @property
    def lost_grace(self) -> float:
        """`lost_grace_s`, always set once the model is built."""
        assert self.lost_grace_s is not None
        return self.lost_grace_s

    @property
    def pool(self) -> PoolSettings:
        """PostgreSQL's connection pool (`db.engine.PoolSettings`)."""
        return PoolSettings(self.postgres_pool_size, self.postgres_pool_overflow, self.postgres_ping_after_idle_s)

    @property
    def dispatch_limits(self) -> Limits:
        """How much dispatch reads at once (`dispatch.Limits`)."""
        return Limits(candidates_per_node=self.dispatch_candidates_per_node,
                      candidate_rows=self.dispatch_candidate_rows, tag_sets_ttl_s=self.tag_sets_ttl_s)

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        """`trusted_proxies` as networks (`model/forwarded.py`)."""
        return networks(self.trusted_proxies)

    @property
    def lockouts(self) -> tuple[LockoutLimits, LockoutLimits]:
        """The lockout rule's figures (`model/lockout.py`) for a user name and for an address."""
        return (LockoutLimits(self.login_max_failures, self.login_failure_window_s, self.login_lockout_s),
                LockoutLimits(self.login_max_failures_per_address, self.login_failure_window_s, self.login_lockout_s))

    @property
    def failure_limits(self) -> FailureLimits:
        """The blocklist and failure limit figures for jobs that set none (`failures.FailureLimits`)."""
        return FailureLimits(blocklist_after=self.blocklist_after, job_max_failures=self.job_max_failures)
