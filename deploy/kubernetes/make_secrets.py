#!/usr/bin/env python3
"""Turn a `modelyzer keys generate DIR --agents N` directory into the three Secrets of deploy/kubernetes.

    modelyzer keys generate keys/ --agents 3
    python3 deploy/kubernetes/make_secrets.py keys/ --nodes gpu-a,gpu-b,gpu-c | kubectl apply -f -

The agents run as a DaemonSet and pick their key pair by node name (`--key $(NODE_NAME)`), and a key can be
connected once at a time, so every GPU node gets its own pair: `--nodes` maps the agent pairs of DIR (`agent`, or
`agent-1` … `agent-N` in order) onto node names; `--node NODE=KEYNAME` maps one explicitly (repeatable; to add a
node later: `keys generate DIR --agents N+1`, then `--node new-node=agent-4` with the others). Written:

- `modelyzer-controller-key`: `controller.key_secret` — mounted by the controller Job at /keys/controller.key_secret;
- `modelyzer-authorized-keys`: `NODE.key` per node (the agent's public key) — mounted at /keys/authorized_keys,
  the directory `profile --agent-keys /keys` admits agents from; deleting an entry revokes that node's agent;
- `modelyzer-agent-keys`: `controller.key` and `NODE.key_secret` per node — mounted by every agent at /keys.
  (Every agent pod can read every node's secret key; keep the namespace's Secret access tight.)

Only the standard library is used, so it runs anywhere `kubectl` does. It reads the files `keys generate` wrote and
never changes them.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from pathlib import Path

CONTROLLER = "controller"
AUTHORIZED = "authorized_keys"
CONTROLLER_SECRET = "modelyzer-controller-key"
AUTHORIZED_SECRET = "modelyzer-authorized-keys"
AGENT_SECRET = "modelyzer-agent-keys"
NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a DNS subdomain, also a valid Secret data key


class KeysError(Exception):
    """The keys directory or the node mapping is wrong; the message says how to fix it."""


def agent_key_names(directory: Path) -> list[str]:
    """The agent key pairs `keys generate` wrote in `directory`, in its order (agent, agent-1 … agent-N)."""
    names = [p.name[: -len(".key_secret")] for p in directory.glob("*.key_secret")]
    names = [n for n in names if n != CONTROLLER]

    def order(name: str) -> tuple[int, str]:
        suffix = name.rpartition("-")[2]
        return (int(suffix), name) if suffix.isdigit() else (0, name)

    return sorted(names, key=order)


def node_mapping(directory: Path, nodes: list[str], explicit: list[str]) -> dict[str, str]:
    """Node name → agent key name, from `--nodes` (in order) and `--node NODE=KEY`."""
    available = agent_key_names(directory)
    mapping: dict[str, str] = {}
    if nodes:
        if len(nodes) > len(available):
            raise KeysError(f"{len(nodes)} nodes but {len(available)} agent key pairs in {directory}: "
                            f"run `modelyzer keys generate {directory} --agents {len(nodes)}`")
        mapping.update(zip(nodes, available, strict=False))
    for item in explicit:
        node, sep, key = item.partition("=")
        if not sep or not node or not key:
            raise KeysError(f"--node: expected NODE=KEYNAME, got {item!r}")
        mapping[node] = key
    if not mapping:
        raise KeysError("name the GPU nodes: --nodes a,b,c (kubectl get nodes -l nvidia.com/gpu.present=true)")
    for node, key in mapping.items():
        if not NODE_NAME.match(node):
            raise KeysError(f"{node!r} is not a Kubernetes node name")
        if key not in available:
            raise KeysError(f"no key pair {key!r} in {directory} (found: {', '.join(available) or 'none'})")
    used = list(mapping.values())
    twice = sorted({k for k in used if used.count(k) > 1})
    if twice:
        raise KeysError(f"key pair(s) {', '.join(twice)} mapped to several nodes: each node needs its own")
    return mapping


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise KeysError(f"{path} does not exist; create keys with `modelyzer keys generate DIR --agents N`")
    return path.read_bytes()


def secrets(directory: Path, mapping: dict[str, str]) -> dict[str, dict[str, bytes]]:
    """Secret name → data (file name → content)."""
    controller_secret = _read(directory / f"{CONTROLLER}.key_secret")
    controller_public = _read(directory / f"{CONTROLLER}.key")
    authorized: dict[str, bytes] = {}
    agent: dict[str, bytes] = {f"{CONTROLLER}.key": controller_public}
    for node, key in sorted(mapping.items()):
        public = directory / AUTHORIZED / f"{key}.key"
        authorized[f"{node}.key"] = _read(public if public.is_file() else directory / f"{key}.key")
        agent[f"{node}.key_secret"] = _read(directory / f"{key}.key_secret")
    return {
        CONTROLLER_SECRET: {f"{CONTROLLER}.key_secret": controller_secret},
        AUTHORIZED_SECRET: authorized,
        AGENT_SECRET: agent,
    }


def render(data: dict[str, dict[str, bytes]], namespace: str) -> str:
    """The Secrets as one multi-document YAML stream (stable order, base64 data)."""
    docs = []
    for name, files in data.items():
        lines = [
            "apiVersion: v1",
            "kind: Secret",
            "metadata:",
            f"  name: {name}",
            f"  namespace: {namespace}",
            "  labels:",
            "    app.kubernetes.io/name: modelyzer",
            "type: Opaque",
            "data:",
        ]
        lines += [f"  {key}: {base64.b64encode(value).decode()}" for key, value in sorted(files.items())]
        docs.append("\n".join(lines) + "\n")
    return "---\n".join(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_secrets.py",
        description="Write the controller and agent key Secrets for deploy/kubernetes from a "
        "`modelyzer keys generate` directory (YAML on stdout, or -o FILE).",
    )
    parser.add_argument("directory", type=Path, help="the keys directory (modelyzer keys generate DIR --agents N)")
    parser.add_argument("--nodes", default="", help="GPU node names, comma-separated, mapped onto the agent "
                        "key pairs in order")
    parser.add_argument("--node", action="append", default=[], metavar="NODE=KEYNAME",
                        help="map one node onto a key pair (repeatable)")
    parser.add_argument("-n", "--namespace", default="modelyzer", help="namespace (default: modelyzer)")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout (mode 600)")
    args = parser.parse_args(argv)
    try:
        nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
        text = render(secrets(args.directory, node_mapping(args.directory, nodes, args.node)), args.namespace)
    except KeysError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.touch(mode=0o600)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
