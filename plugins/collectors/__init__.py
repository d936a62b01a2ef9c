"""Built-in metric collectors: `nvml` (GPUs read directly), `cpu` (RAM, psutil) and `triton_metrics` (the server's
Prometheus `/metrics`), all sampling in a thread through the shared `sampling.SamplingCollector` base."""
