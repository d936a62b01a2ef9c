"""What the controller knows of one agent (`AgentRecord`, passed to the agent_joined / agent_lost hooks).

Split from `plugins/agents/hub.py`, which keeps one record per authenticated key.
"""

from __future__ import annotations

import attrs

from modelyzer.kernel.models import GpuDevice
from modelyzer.plugins.agents.keys import fingerprint
from modelyzer.plugins.agents.protocol import SlotInfo


@attrs.define(eq=False)
class AgentRecord:
    """One agent as the controller knows it (passed to the agent_joined / agent_lost hooks)."""

    id: str  # the authenticated public key (Z85), or `insecure:<name>`
    name: str
    host: str
    route: bytes
    slots: tuple[SlotInfo, ...] = ()
    launch_modes: tuple[str, ...] = ()
    load_generators: tuple[str, ...] = ()
    state: str = "connected"  # connected, lost, gone
    done: int = 0
    seq: int = 0  # last controller seq sent to it in its session
    seen_seq: int = 0  # last controller seq it confirmed
    counters: dict[str, int] = attrs.field(factory=dict)
    incarnation: str = ""  # the agent process (a restarted agent has a new one)
    hello_seq: int = 0  # seq of the hello that registered it
    token: str = ""  # of its welcome: its messages carry it (another process with the same key does not)

    @property
    def label(self) -> str:
        """`name#fingerprint` (the key decides who it is, the name is what people read)."""
        return self.name if self.id.startswith("insecure:") else f"{self.name}#{fingerprint(self.id)}"

    def count(self, server_starts: int, model_loads: int) -> None:
        """The agent's counters as last reported (they only grow; a late resend must not lower them)."""
        for name, value in (("server_starts", server_starts), ("model_loads", model_loads)):
            self.counters[name] = max(self.counters.get(name, 0), value)

    @property
    def gpus(self) -> list[GpuDevice]:
        return [GpuDevice(s.gpu, s.gpu_name, s.gpu_index, s.total_memory_mb) for s in self.slots if s.gpu]


def peer_label(route: bytes, user_id: str) -> str:
    return f"key {fingerprint(user_id)}" if user_id and not user_id.startswith("insecure:") else f"route {route.hex()}"


__all__ = ["AgentRecord", "peer_label"]
