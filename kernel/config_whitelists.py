"""The flag whitelists of the `*_flags` / `triton_docker_args` keys, and the parser that enforces them.

This module owns which extra command-line flags modelyzer passes on (Model Analyzer facts §2.2):
perf_analyzer's and genai-perf's flags (kebab-case), docker-py's `containers.run` arguments, the
perf_analyzer load flags that exclude each other, and `parse_dict_field()`, which parses every mapping-valued
key (flag mappings, environments, labels, docker arguments) against them. The generic value parsers live in
`kernel/config_values.py`.
"""

from __future__ import annotations

from typing import Any

from modelyzer.kernel.config_values import (
    Where,
    check_tree,
    did_you_mean,
    parse_environment,
    parse_flag_dict,
    parse_mapping,
)

PERF_ANALYZER_FLAGS = frozenset(
    """service-kind model-signature-name async sync measurement-interval concurrency-range request-rate-range
    request-distribution request-intervals binary-search num-of-sequences latency-threshold max-threads
    stability-percentage max-trials percentile input-data shared-memory output-shared-memory-size shape
    sequence-length sequence-id-range string-length string-data measurement-mode measurement-request-count
    streaming grpc-compression-algorithm triton-server-directory model-repository ssl-grpc-use-ssl
    ssl-grpc-root-certifications-file ssl-grpc-private-key-file ssl-grpc-certificate-chain-file
    ssl-https-verify-peer ssl-https-verify-host ssl-https-ca-certificates-file ssl-https-client-certificate-type
    ssl-https-client-certificate-file ssl-https-private-key-type ssl-https-private-key-file collect-metrics
    metrics-url metrics-interval bls-composing-models model-name model-version batch-size url protocol
    latency-report-file http-header verbose extra-verbose verbose-csv""".split()
)
PERF_ANALYZER_LOAD_FLAGS = ("concurrency-range", "request-rate-range", "request-intervals")

# Model Analyzer's names (the genai_perf plugin translates the ones genai-perf 0.0.16 renamed) and 0.0.16's own;
# not --warmup-request-count: perf_analyzer 2.51 never ends such a run at concurrency > 1
GENAI_PERF_FLAGS = frozenset(
    """backend endpoint service-kind url expected-output-tokens input-dataset input-tokens-mean
    input-tokens-stddev input-type num-of-output-prompts random-seed streaming tokenizer endpoint-type
    extra-inputs header output-tokens-mean output-tokens-stddev output-tokens-mean-deterministic
    synthetic-input-tokens-mean synthetic-input-tokens-stddev num-dataset-entries input-file request-count
    measurement-interval stability-percentage goodput""".split()
)

DOCKER_ARGS = frozenset(
    """image command auto_remove blkio_weight_device blkio_weight cap_add cap_drop cgroup_parent cgroupns
    cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_shares cpuset_cpus cpuset_mems detach
    domainname entrypoint environment hostname init init_path ipc_mode isolation kernel_memory labels
    mac_address mem_limit mem_reservation memswap_limit name nano_cpus network network_disabled network_mode
    oom_kill_disable oom_score_adj pid_mode pids_limit platform privileged publish_all_ports remove runtime
    shm_size stdin_open stdout stderr stop_signal stream tty use_config_proxy user userns_mode uts_mode version
    volume_driver volumes working_dir""".split()
)


def _not_negative(flags: dict[str, Any], where: Where) -> dict[str, Any]:
    """The load generators' numeric flags are counts, sizes, intervals and percentages: none may be negative."""
    for key, item in flags.items():
        for number in item if isinstance(item, list) else [item]:
            if isinstance(number, int | float) and not isinstance(number, bool) and number < 0:
                where.child(key).fail(f"must not be negative (a count, size, interval or percentage), got {number:g}")
    return flags


def parse_dict_field(name: str, value: Any, where: Where) -> dict[str, Any]:
    if name == "perf_analyzer_flags":
        flags = parse_flag_dict(value, where, PERF_ANALYZER_FLAGS, hint=" of perf_analyzer (kebab-case)")
        loads = [flag for flag in PERF_ANALYZER_LOAD_FLAGS if flag in flags]
        if len(loads) > 1:
            where.fail(f"{' and '.join(loads)} are mutually exclusive; keep one")
        return _not_negative(flags, where)
    if name == "genai_perf_flags":
        return _not_negative(parse_flag_dict(value, where, GENAI_PERF_FLAGS, hint=" of genai-perf (kebab-case)"), where)
    if name == "triton_server_flags":
        return parse_flag_dict(value, where, kebab=True)
    if name in ("triton_server_environment", "triton_docker_labels"):
        return parse_environment(value, where)
    if name == "triton_docker_args":
        for key in parse_mapping(value, where):
            if key not in DOCKER_ARGS:
                where.child(key).fail(f"is not an accepted docker run argument{did_you_mean(key, DOCKER_ARGS)}")
        return dict(check_tree(value, where))
    return dict(check_tree(parse_mapping(value, where), where))
