"""The `ray` executor's config keys (`executor: ray`)."""

from __future__ import annotations

import attrs

DEFAULT_SLOT_RESOURCE = "modelyzer_slot"


@attrs.frozen
class RaySettings:
    ray_address: str = attrs.field(default="", metadata={"help": (
        "Ray cluster the `ray` executor runs slot actors on: its address (`ray start --head` prints it, e.g. "
        "`10.0.0.5:6379`), or `auto` for the cluster this host belongs to. Empty: a private Ray instance is "
        "started on this host for the profile and stopped after it.")})
    ray_slots: int = attrs.field(default=0, metadata={"minimum": 0, "help": (
        "Slot actors to run; each keeps one server warm and measures one RunConfig at a time. 0: one per GPU "
        "of the cluster, else one per unit of the `ray_slot_resource` custom resource, else 1.")})
    ray_slot_resource: str = attrs.field(default=DEFAULT_SLOT_RESOURCE, metadata={"help": (
        "Custom Ray resource a CPU slot actor needs one unit of (`ray start --resources "
        "'{\"modelyzer_slot\": 2}'` offers two slots on that node). Nodes without it run no CPU slots; a "
        "cluster without it anywhere runs CPU slots on any node (one CPU each).")})
    ray_max_task_retries: int = attrs.field(default=2, metadata={"minimum": 0, "help": (
        "Times a RunConfig is sent to another slot actor when its actor died mid-measurement (a node or worker "
        "lost); then it is stored as failed with the reason.")})
