"""Load and validate `mlcd.yaml` into typed, immutable settings.

The file is checked against ``schema/mlcd.schema.json``; every problem becomes one
:class:`~mlcd.errors.ConfigError` naming the key path, the line in the file and the
fix. Unknown keys are rejected with a "did you mean". Secrets are never accepted in
the file: API keys, passwords and tokens are given as the *names* of environment
variables, read by :func:`read_secret` at the moment they are needed.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from mlcd.configcheck import Loader, Located, format_error, path_text, schema_errors
from mlcd.deployer_config import with_deployers
from mlcd.envsettings import NO_SETTINGS, EnvSettings, parse_env_settings
from mlcd.errors import ConfigError, InputError
from mlcd.redact import register_secret
from mlcd.training.settings import TrainingConfig, training_config

if TYPE_CHECKING:
    from mlcd.deployer_config import DeployerConfig
    from mlcd.dss.node import DSSNode

DEFAULT_ID_FORMAT = "{project}_{utc}_{git_sha}_b{build}"
DEFAULT_TEST_PREFIX = "TEST_"
ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEY_NAMES = {"api_key", "apikey", "key", "password", "passwd", "token", "secret", "api_token"}
_SECRET_RUN_RE = re.compile(r"[A-Za-z0-9+/=]{20,}")


# -- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TLSConfig:
    """TLS options of one node: verify certificates, optionally against a CA bundle."""

    verify: bool = True
    ca_bundle: str | None = None

    def requests_verify(self) -> bool | str:
        """The value for requests' ``verify``: False, True, or the CA bundle path."""
        if not self.verify:
            return False
        return self.ca_bundle or True


@dataclass(frozen=True)
class NodeConfig:
    """How to reach one DSS node; the API key is in the env var ``api_key_env``."""

    url: str
    api_key_env: str
    tls: TLSConfig
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    preload_timeout: float = 1800.0  # preload builds code environments: minutes, not seconds
    project_standards_checks: bool = True  # sent with every export (DSS 14.1+)


@dataclass(frozen=True)
class FleetNodeConfig:
    """One named automation node of a multi-node environment, with its own remappings."""

    name: str
    node: NodeConfig
    connection_remappings: dict[str, str]


@dataclass(frozen=True)
class TestsConfig:
    """Which scenarios of a project are an environment's tests."""

    __test__ = False  # not a pytest test class

    enabled: bool
    prefix: str | None
    scenarios: tuple[str, ...] | None
    exclude: tuple[str, ...]

    def select(self, scenario_ids: Iterable[str], smoke: Iterable[str]) -> list[str]:
        """Ids to run as tests.

        An explicit ``scenarios`` list is returned in its order (minus ``exclude``),
        whether or not the ids exist: callers check existence. With a ``prefix``, the
        existing ids starting with it, sorted, minus ``exclude`` and minus smoke ids.
        """
        if not self.enabled:
            return []
        excluded = set(self.exclude)
        if self.scenarios is not None:
            return [s for s in self.scenarios if s not in excluded]
        prefix = self.prefix if self.prefix is not None else DEFAULT_TEST_PREFIX
        smoke_ids = set(smoke)
        return sorted(
            {s for s in scenario_ids if s.startswith(prefix) and s not in excluded and s not in smoke_ids}
        )

    def describe(self) -> str:
        """A short human description of the selection."""
        if not self.enabled:
            return "no tests"
        if self.scenarios is not None:
            return "scenarios " + ", ".join(self.scenarios)
        text = f"scenarios starting with {self.prefix or DEFAULT_TEST_PREFIX}"
        return text + (f" except {', '.join(self.exclude)}" if self.exclude else "")


@dataclass(frozen=True)
class TimeoutsConfig:
    """Deadlines in seconds: one scenario run, one deployment, waiting for the deploy lock."""

    scenario: float = 600
    deploy: float = 900
    lock: float = 300


@dataclass(frozen=True)
class EnvironmentConfig:
    """One target environment (an automation node) and its release policy."""

    name: str
    node: NodeConfig
    connection_remappings: dict[str, str]
    approval: bool
    tests: TestsConfig
    smoke: tuple[str, ...]
    warning: str  # "fail" | "pass"
    flaky: dict[str, int]
    timeouts: TimeoutsConfig
    rollback_on_failure: bool
    settings: EnvSettings = NO_SETTINGS  # local variables, scenario states, code-env remappings
    deployer: DeployerConfig | None = None  # set: deployed through the Project Deployer
    nodes: tuple[FleetNodeConfig, ...] = ()  # several automation nodes (a fleet), see mlcd.release.fleet


@dataclass(frozen=True)
class BundleConfig:
    """How bundles are named and which release notes they carry."""

    id_format: str = DEFAULT_ID_FORMAT
    release_notes: str = "git"  # "git" | "none"


@dataclass(frozen=True)
class ArtifactRepoConfig:
    """A generic/raw artifact repository (Artifactory, Nexus, WebDAV) accepting HTTP PUT."""

    url: str
    username_env: str | None
    password_env: str | None
    token_env: str | None


@dataclass(frozen=True)
class SigningConfig:
    """Names of the signing keys' environment variables (see docs/security.md).

    ``key_env``: HMAC key of published metadata and of the audit chain;
    ``previous_key_env``: the key before a rotation, still accepted when verifying;
    ``approval_key_env``: Ed25519 private key of approvals (bound only where a person approves);
    ``approval_public_key_file``: its public key, a file beside mlcd.yaml that deploy verifies with.
    """

    key_env: str | None = None
    previous_key_env: str | None = None
    approval_key_env: str | None = None
    approval_public_key_file: Path | None = None


@dataclass(frozen=True)
class MlcdConfig:
    """The whole validated `mlcd.yaml`."""

    project: str
    design: NodeConfig
    bundle: BundleConfig
    artifact_repository: ArtifactRepoConfig | None
    environments: tuple[EnvironmentConfig, ...]
    source_path: Path
    earlier_environments: str = "rollback"  # on_failure.earlier_environments: rollback | keep
    allow_insecure_http: bool = False
    signing: SigningConfig = SigningConfig()
    continuous_training: TrainingConfig | None = None  # `mlcd retrain` (mlcd.training.settings)

    def environment(self, name: str) -> EnvironmentConfig:
        """The environment called ``name``; ConfigError with a "did you mean" otherwise."""
        for env in self.environments:
            if env.name == name:
                return env
        names = [e.name for e in self.environments]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"environment '{name}' is not defined in {self.source_path}",
            f"{hint}use one of: {', '.join(names)}",
        )

    @property
    def environment_names(self) -> list[str]:
        """Environment names in configuration order."""
        return [e.name for e in self.environments]


# -- secrets and nodes -------------------------------------------------------------------------------
def read_secret(env_var: str, purpose: str) -> str:
    """Read a secret from environment variable ``env_var`` and register it for redaction.

    Raises InputError (exit 2) when it is unset or empty; the message names the
    variable and what it is for, never a value.
    """
    value = os.environ.get(env_var, "")
    if not value.strip():
        raise InputError(
            f"environment variable {env_var} is not set or empty ({purpose})",
            f"set {env_var} (e.g. with Jenkins withCredentials) before running mlcd",
        )
    value = value.strip()
    register_secret(value)
    return value


def node_for(node: NodeConfig, name: str) -> DSSNode:
    """A DSS client for ``node``: key from its env var, its TLS options and timeouts.

    The URL is checked to be a DSS node before anything else is sent (exit 6 otherwise).
    """
    from mlcd.dss.identity import ensure_dss
    from mlcd.dss.node import DSSNode

    api_key = read_secret(node.api_key_env, f"API key of the {name} node")
    client = DSSNode(
        node.url,
        api_key,
        name=name,
        verify=node.tls.requests_verify(),
        connect_timeout=node.connect_timeout,
        read_timeout=node.read_timeout,
        preload_timeout=node.preload_timeout,
        project_standards_checks=node.project_standards_checks,
    )
    ensure_dss(client)
    return client


# -- loading -----------------------------------------------------------------------------------------
def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_like_secret(value: str) -> bool:
    """Heuristic: holds a long random run of letters and digits (an API key, a token, a password hash).

    Paths and URLs are not secrets; words joined by ``_`` or ``-`` (connection
    names, scenario ids) have short runs and pass.
    """
    if value.startswith(("/", "./", "../", "~")) or "://" in value:
        return False
    if ENV_VAR_RE.match(value) and value.upper() == value:
        return False  # an environment variable name or scenario id: SOME_NAME_2
    for run in _SECRET_RUN_RE.findall(value):
        if re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run) and _entropy(run) >= 3.5:
            return True
    return False


def _env_ref(value: Any) -> bool:
    """A ``{value_env: NAME}`` reference (a variable's secret value, read from the environment)."""
    return isinstance(value, dict) and set(value) == {"value_env"}


def _scan_secrets(data: Any, path: tuple[Any, ...], loc: Located) -> None:
    """Reject literal secrets anywhere in the file (never echoing them)."""
    if isinstance(data, dict):
        for key, value in data.items():
            sub = (*path, key)
            if str(key).lower() in _SECRET_KEY_NAMES and value not in (None, "") and not _env_ref(value):
                raise ConfigError(
                    f"{loc.where(sub)}: '{path_text(sub)}' holds a literal secret; "
                    "mlcd.yaml must not contain secrets",
                    f"remove it and use '{key}_env: <NAME OF AN ENVIRONMENT VARIABLE>' instead"
                    if str(key).lower() != "api_key"
                    else "remove it and use 'api_key_env: DSS_..._API_KEY' naming an environment variable",
                )
            _scan_secrets(value, sub, loc)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _scan_secrets(item, (*path, index), loc)
    elif isinstance(data, str):
        _scan_text(data, path, loc)


def _scan_text(data: str, path: tuple[Any, ...], loc: Located) -> None:
    """Reject a text value that looks like a literal secret, or a URL with credentials in it."""
    key = str(path[-1]) if path else ""
    if looks_like_secret(data):
        fix = (
            "give the NAME of the environment variable that holds the key "
            "(e.g. DSS_TEST_API_KEY), not the key"
            if key.endswith("_env")
            else "secrets go in environment variables named by *_env keys, never in mlcd.yaml"
        )
        raise ConfigError(
            f"{loc.where(path)}: '{path_text(path)}' looks like a literal secret (API key or token)", fix
        )
    if key == "url" and "://" in data:
        parts = urlsplit(data)
        if parts.password or parts.username:
            raise ConfigError(
                f"{loc.where(path)}: '{path_text(path)}' contains credentials in the URL",
                "remove user:password@ from the URL; use username_env/password_env or token_env",
            )


def _node(data: dict[str, Any]) -> NodeConfig:
    tls = data.get("tls") or {}
    return NodeConfig(
        url=str(data["url"]).rstrip("/"),
        api_key_env=str(data["api_key_env"]),
        tls=TLSConfig(verify=bool(tls.get("verify", True)), ca_bundle=tls.get("ca_bundle")),
        connect_timeout=float(data.get("connect_timeout", 5.0)),
        read_timeout=float(data.get("read_timeout", 60.0)),
        preload_timeout=float(data.get("preload_timeout", 1800.0)),
        project_standards_checks=bool(data.get("project_standards_checks", True)),
    )


def _tests(value: Any) -> TestsConfig:
    if value is None or value is True:
        return TestsConfig(enabled=True, prefix=DEFAULT_TEST_PREFIX, scenarios=None, exclude=())
    if value is False:
        return TestsConfig(enabled=False, prefix=None, scenarios=None, exclude=())
    scenarios = value.get("scenarios")
    return TestsConfig(
        enabled=True,
        prefix=None if scenarios is not None else str(value.get("prefix", DEFAULT_TEST_PREFIX)),
        scenarios=tuple(str(s) for s in scenarios) if scenarios is not None else None,
        exclude=tuple(str(s) for s in value.get("exclude") or ()),
    )


def _environment(data: dict[str, Any], settings: EnvSettings = NO_SETTINGS) -> EnvironmentConfig:
    smoke = data.get("smoke")
    if smoke is None:
        smoke_ids: tuple[str, ...] = ()
    elif isinstance(smoke, str):
        smoke_ids = (smoke,)
    else:
        smoke_ids = tuple(str(s) for s in smoke)
    timeouts = data.get("timeouts") or {}
    nodes = _fleet_nodes(data.get("nodes") or [])
    return EnvironmentConfig(
        name=str(data["name"]),
        node=nodes[0].node if nodes and "url" not in data else _node(data),
        connection_remappings={str(k): str(v) for k, v in (data.get("connection_remappings") or {}).items()},
        approval=bool(data.get("approval", False)),
        tests=_tests(data.get("tests")),
        smoke=smoke_ids,
        warning=str(data.get("warning", "fail")),
        flaky={str(k): int(v) for k, v in (data.get("flaky") or {}).items()},
        timeouts=TimeoutsConfig(
            scenario=float(timeouts.get("scenario", 600)),
            deploy=float(timeouts.get("deploy", 900)),
            lock=float(timeouts.get("lock", 300)),
        ),
        rollback_on_failure=bool(data.get("rollback_on_failure", True)),
        settings=settings,
        nodes=nodes,
    )


def _fleet_nodes(items: list[dict[str, Any]]) -> tuple[FleetNodeConfig, ...]:
    """The ``nodes`` of a multi-node environment (each a node mapping with a name and remappings)."""
    return tuple(
        FleetNodeConfig(
            name=str(item["name"]),
            node=_node(item),
            connection_remappings={
                str(k): str(v) for k, v in (item.get("connection_remappings") or {}).items()
            },
        )
        for item in items
    )


def parse_config(text: str, source: Path) -> MlcdConfig:
    """Validate the YAML ``text`` of a configuration file and build :class:`MlcdConfig`."""
    root, data = _load_yaml(text, source)
    loc = Located(root, source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the configuration must be a mapping with project, design and environments",
            "see docs/configuration.md for an example",
        )
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{loc.where(())}: key {key!r} is not a string", "quote it or rename it")
    _scan_secrets(data, (), loc)
    for err in schema_errors(data):
        raise format_error(err, loc)
    bundle = data.get("bundle") or {}
    _refuse_plain_http(data, loc)
    return MlcdConfig(
        project=str(data["project"]),
        design=_node(data["design"]),
        bundle=BundleConfig(
            id_format=str(bundle.get("id_format", DEFAULT_ID_FORMAT)),
            release_notes=str(bundle.get("release_notes", "git")),
        ),
        artifact_repository=_artifact_repository(data.get("artifact_repository"), loc),
        environments=with_deployers(data, _environments(data["environments"], loc), loc),
        source_path=source,
        earlier_environments=str((data.get("on_failure") or {}).get("earlier_environments", "rollback")),
        allow_insecure_http=bool(data.get("allow_insecure_http", False)),
        signing=_signing(data.get("signing") or {}, source, loc),
        continuous_training=training_config(data.get("continuous_training"), loc),
    )


def _load_yaml(text: str, source: Path) -> tuple[Any, Any]:
    """The YAML node tree (for line numbers) and the data of ``text``; ConfigError naming the line."""
    try:
        root = yaml.compose(text, Loader=Loader)
        data = yaml.load(text, Loader=Loader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"{source}{line}: not valid YAML: {problem}", "fix the YAML syntax (indentation, colons, quotes)"
        ) from None
    except yaml.YAMLError:
        raise ConfigError(f"{source}: not valid YAML", "fix the YAML syntax") from None
    return root, data


def _environments(items: list[Any], loc: Located) -> tuple[EnvironmentConfig, ...]:
    """The environments in order; ConfigError when a name is used twice."""
    envs: list[EnvironmentConfig] = []
    seen: set[str] = set()
    for index, env_data in enumerate(items):
        env = _environment(env_data, parse_env_settings(env_data, index, loc))
        if env.name in seen:
            raise ConfigError(
                f"{loc.where(('environments', index, 'name'))}: environment name '{env.name}' is used twice",
                "give every environment a unique name",
            )
        seen.add(env.name)
        envs.append(env)
    return tuple(envs)


def _artifact_repository(repo: dict[str, Any] | None, loc: Located) -> ArtifactRepoConfig | None:
    """The ``artifact_repository`` section, or None; basic auth needs both of its variables."""
    if repo is None:
        return None
    if bool(repo.get("username_env")) != bool(repo.get("password_env")):
        raise ConfigError(
            f"{loc.where(('artifact_repository',))}: artifact_repository needs both username_env "
            "and password_env, or neither",
            "add the missing one, or use token_env",
        )
    return ArtifactRepoConfig(
        url=str(repo["url"]).rstrip("/"),
        username_env=repo.get("username_env"),
        password_env=repo.get("password_env"),
        token_env=repo.get("token_env"),
    )


def _signing(data: dict[str, Any], source: Path, loc: Located) -> SigningConfig:
    """The ``signing`` section; the public key file is resolved against mlcd.yaml's directory."""
    if data.get("approval_key_env") and not data.get("approval_public_key_file"):
        raise ConfigError(
            f"{loc.where(('signing',))}: signing.approval_key_env needs signing.approval_public_key_file",
            "add approval_public_key_file: the file with the approval key's public half (docs/security.md)",
        )
    public = data.get("approval_public_key_file")
    return SigningConfig(
        key_env=data.get("key_env"),
        previous_key_env=data.get("previous_key_env"),
        approval_key_env=data.get("approval_key_env"),
        approval_public_key_file=(source.parent / str(public)) if public else None,
    )


def _refuse_plain_http(data: dict[str, Any], loc: Located) -> None:
    """Plain http:// URLs send keys in clear text: refused unless ``allow_insecure_http: true``."""
    if data.get("allow_insecure_http") is True:
        return
    urls: dict[tuple[Any, ...], Any] = {("design", "url"): data["design"]["url"]}
    for i, e in enumerate(data["environments"]):
        if "url" in e:
            urls[("environments", i, "url")] = e["url"]
        for j, n in enumerate(e.get("nodes") or []):  # a multi-node environment
            urls[("environments", i, "nodes", j, "url")] = n["url"]
    if data.get("artifact_repository"):
        urls[("artifact_repository", "url")] = data["artifact_repository"]["url"]
    for path, url in urls.items():
        if str(url).lower().startswith("http://"):
            raise ConfigError(
                f"{loc.where(path)}: {path_text(path)} is a plain http:// URL, so API keys would travel "
                "unencrypted",
                "use https://, or set allow_insecure_http: true at the top of mlcd.yaml (loopback only)",
            )


def load_config(path: Path) -> MlcdConfig:
    """Read and validate `mlcd.yaml` at ``path``; ConfigError (exit 2) names key, line and fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} not found",
            "pass --config PATH or create mlcd.yaml (see docs/configuration.md)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"cannot read configuration file {path}: {reason}", "check the path and permissions"
        ) from None
    config = parse_config(text, path)
    from mlcd.signing import use_signing_config

    use_signing_config(config.signing)  # for approval checks (mlcd.signing.verify_approval)
    return config
