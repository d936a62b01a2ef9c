"""CURVE keys of the agent link: generating them, loading them, and deciding who may connect (ZAP).

`modelyzer keys generate DIR` writes (never overwriting what exists):

    DIR/controller.key            the controller's public key: copy it to every agent host
    DIR/controller.key_secret     the controller's secret key: stays on the controller host
    DIR/agent.key(_secret)        one key pair per agent (`agent-1` … `agent-N` with --agents N)
    DIR/authorized_keys/*.key     the agent public keys the controller accepts

The controller (`profile --agents … --agent-keys DIR`) loads its secret key and the authorized directory;
an agent (`agent --keys DIR`) loads `controller.key` and its own `*.key_secret`. `ZapHandler` answers
libzmq's ZAP requests for the controller's socket: a CURVE client whose public key has a file in the
authorized directory is accepted with its key (Z85) as User-Id — the agent's identity —, anything else is
refused and logged with its address. The directory is checked (one `scandir`: names, sizes, mtimes) on every
handshake and re-read when it changed, so adding an agent needs no controller restart and deleting a key file
revokes it: refused at its next connection, and `admits()` tells the controller to drop a connected agent at
its next message. There is no allow-any mode: plaintext (`--insecure`) is the only
alternative, and it warns.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import zmq
import zmq.auth
from zmq.utils import z85

from modelyzer.kernel.errors import ConfigError

log = logging.getLogger("modelyzer")

CONTROLLER = "controller"
AUTHORIZED = "authorized_keys"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two log lines about the same refused key and address
ADMIT_CHECK_EVERY = 0.2  # seconds between two looks at the authorized directory for messages (handshakes: always)


@attrs.frozen
class ControllerKeys:
    public: bytes
    secret: bytes
    authorized: Path


@attrs.frozen
class AgentKeys:
    public: bytes
    secret: bytes
    controller_public: bytes
    name: str
    controller_path: Path | None = None  # where `controller_public` was read (named when the handshake fails)


def generate_keys(directory: Path, agents: int = 1) -> list[Path]:
    """Create the controller pair, `agents` agent pairs and the authorized directory; returns new files."""
    if not zmq.has("curve"):
        raise ConfigError("keys: this libzmq has no CURVE support; install pyzmq with libsodium")
    directory.mkdir(parents=True, exist_ok=True)
    authorized = directory / AUTHORIZED
    authorized.mkdir(exist_ok=True)
    names = [CONTROLLER] + (["agent"] if agents == 1 else [f"agent-{i}" for i in range(1, agents + 1)])
    written: list[Path] = []
    for name in names:
        public = directory / f"{name}.key"
        if not public.exists():
            pub_path, secret_path = zmq.auth.create_certificates(str(directory), name)
            Path(secret_path).chmod(0o600)
            written += [Path(pub_path), Path(secret_path)]
        if name != CONTROLLER and not (authorized / public.name).exists():
            (authorized / public.name).write_text(public.read_text())
            written.append(authorized / public.name)
    return written


def _load(path: Path, what: str, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise ConfigError(f"{what}: {path} does not exist; create keys with `modelyzer keys generate DIR`")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as err:
        raise ConfigError(f"{what}: {path} is not a CURVE key file ({err})") from None
    if secret and not secret_key:
        raise ConfigError(f"{what}: {path} holds no secret key")
    return public, secret_key


def load_controller_keys(directory: Path) -> ControllerKeys:
    """The controller's key pair and authorized directory from a `keys generate` directory."""
    public, secret = _load(directory / f"{CONTROLLER}.key_secret", "agent_keys", secret=True)
    authorized = directory / AUTHORIZED
    if not authorized.is_dir():
        raise ConfigError(f"agent_keys: {authorized} does not exist; create it with `modelyzer keys generate {directory}`")
    assert secret is not None
    return ControllerKeys(public, secret, authorized)


def agent_key_name(directory: Path, name: str | None) -> str:
    """The agent key pair to use: `name`, else `agent`, else the only non-controller secret key in `directory`."""
    if name:
        return name
    secrets = sorted(p.name[: -len(".key_secret")] for p in directory.glob("*.key_secret"))
    secrets = [s for s in secrets if s != CONTROLLER]
    if "agent" in secrets:
        return "agent"
    if len(secrets) == 1:
        return secrets[0]
    found = ", ".join(secrets) or "none"
    raise ConfigError(f"keys: choose this agent's key pair in {directory} with --key NAME (found: {found})")


def load_agent_keys(directory: Path, name: str | None = None) -> AgentKeys:
    """The agent's key pair and the controller's public key from a keys directory."""
    chosen = agent_key_name(directory, name)
    public, secret = _load(directory / f"{chosen}.key_secret", "keys", secret=True)
    controller_public, _ = _load(directory / f"{CONTROLLER}.key", "keys", secret=False)
    assert secret is not None
    return AgentKeys(public, secret, controller_public, chosen, directory / f"{CONTROLLER}.key")


def authorized_keys(directory: Path) -> dict[bytes, str]:
    """Public key (Z85) → file name, for every readable key file in `directory`."""
    keys: dict[bytes, str] = {}
    for path in sorted(directory.glob("*.key")):
        try:
            public, _ = zmq.auth.load_certificate(str(path))
        except (ValueError, OSError) as err:
            log.warning("authorized key %s is unreadable, ignored: %s", path, err)
            continue
        keys[public] = path.stem
    return keys


def fingerprint(key: str | bytes) -> str:
    """A short, printable form of a Z85 public key (its first 8 characters)."""
    text = key.decode() if isinstance(key, bytes) else key
    return text[:8]


def directory_state(directory: Path) -> tuple[object, ...]:
    """What changes when a key file is added, removed, renamed or rewritten in `directory` (cheap: one scandir)."""
    try:
        entries = []
        for entry in os.scandir(directory):
            if entry.name.endswith(".key"):
                st = entry.stat()
                entries.append((entry.name, st.st_mtime_ns, st.st_size))
        return os.stat(directory).st_mtime_ns, *sorted(entries)
    except OSError as err:
        return (type(err).__name__,)


class ZapHandler:
    """Answers ZAP requests: CURVE keys from the authorized directory are accepted, everything else refused."""

    def __init__(self, authorized: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.authorized = authorized
        self.clock = clock
        self._state = directory_state(authorized)
        self._checked = clock()
        self.keys = authorized_keys(authorized)
        self._logged: dict[tuple[bytes, str], float] = {}

    def refresh(self) -> None:
        """Re-read the authorized directory if anything in it changed since the last look."""
        state = directory_state(self.authorized)
        if state == self._state:
            return
        self._state = state
        before, self.keys = self.keys, authorized_keys(self.authorized)
        for public in before.keys() - self.keys.keys():
            log.warning("agent key %s (%s) revoked: its file is gone from %s", fingerprint(public), before[public],
                        self.authorized)
        for public in self.keys.keys() - before.keys():
            log.info("agent key %s (%s) authorized", fingerprint(public), self.keys[public])

    def admits(self, public: str) -> bool:
        """Whether the key (Z85) of a connected agent is still authorized (the directory re-checked first)."""
        now = self.clock()
        if now - self._checked >= ADMIT_CHECK_EVERY:
            self._checked = now
            self.refresh()
        return public.encode() in self.keys

    def reply(self, frames: list[bytes]) -> list[bytes]:
        """The reply frames to one ZAP request (routing envelope included)."""
        if len(frames) < 8:
            return []
        envelope, request = frames[:2], frames[2:]
        version, request_id, _domain, address, _identity, mechanism, *credentials = request
        if version != b"1.0":
            return envelope + [b"1.0", request_id, b"500", b"unsupported ZAP version", b"", b""]
        key = credentials[0] if credentials and mechanism == b"CURVE" and len(credentials[0]) == 32 else b""
        public = z85.encode(key) if key else b""
        self.refresh()  # a key added or deleted since the last handshake
        if public and public in self.keys:
            log.debug("agent key %s (%s) accepted from %s", fingerprint(public), self.keys[public], address.decode())
            return envelope + [b"1.0", request_id, b"200", b"OK", public, b""]
        self._log_refusal(public, address.decode(errors="replace"), mechanism.decode(errors="replace"))
        return envelope + [b"1.0", request_id, b"400", b"key not authorized", b"", b""]

    def _log_refusal(self, public: bytes, address: str, mechanism: str) -> None:
        now = self.clock()
        last = self._logged.get((public, address))
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        if len(self._logged) > 10000:
            self._logged.clear()
        self._logged[(public, address)] = now
        if public:
            log.warning(
                "refused agent key %s from %s: not in %s (copy the agent's .key file there to admit it)",
                public.decode(), address, self.authorized,
            )
        else:
            log.warning("refused a %s connection from %s: only CURVE agents are accepted", mechanism, address)


__all__ = [
    "AUTHORIZED",
    "CONTROLLER",
    "ZAP_ENDPOINT",
    "AgentKeys",
    "ControllerKeys",
    "ZapHandler",
    "agent_key_name",
    "authorized_keys",
    "directory_state",
    "fingerprint",
    "generate_keys",
    "load_agent_keys",
    "load_controller_keys",
]
