"""Prometheus metrics, read from the store at scrape time (multi-process and multi-machine safe).

Why not counters in process memory: workers run in other processes (``fluxserve worker``, and soon
``serve``'s own worker processes) and on other machines, and an API process may restart. Every event
worth counting is already a row in the store, so the collector asks the store on each scrape — every
API process answers the same numbers, nothing is lost on a restart, and no
``PROMETHEUS_MULTIPROC_DIR`` shared folder is needed (which could not span machines anyway). The
cost is a few grouped queries per scrape (a scan of the task table for the histograms).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from fluxserve.tasks.stats import DURATION_BUCKETS
from fluxserve.tasks.store import TaskStore
from fluxserve.tasks.workers import WorkerDirectory, WorkerRow


class StoreCollector(Collector):
    def __init__(self, store: TaskStore, tools: Callable[[], Iterable[str]]) -> None:
        self._store = store
        self._tools = tools
        self._directory = WorkerDirectory(store.engine)

    def collect(self) -> Iterator[Metric]:
        stats = self._store.stats
        tools = sorted(self._tools())

        totals = CounterMetricFamily(
            "fluxserve_tasks",
            "Tasks by tool and outcome (created, succeeded, failed, cancelled).",
            labels=["tool", "status"],
        )
        for (tool, status), count in sorted(stats.task_totals().items()):
            totals.add_metric([tool, status], count)
        yield totals

        yield _per_tool("fluxserve_queue_depth", "Tasks waiting in the queue.", tools, stats.queue_depth())
        yield _per_tool(
            "fluxserve_tasks_running", "Tasks claimed by a worker, not yet ended.", tools, stats.running()
        )
        workers = _threads_by_tool(self._directory.live())
        yield _per_tool(
            "fluxserve_workers",
            "Worker threads, in live workers of any process or machine, that claim the tool.",
            tools,
            workers,
        )

        durations = HistogramMetricFamily(
            "fluxserve_task_duration_seconds",
            "Seconds a task spent waiting in the queue (phase=queue) and running (phase=run).",
            labels=["tool", "phase"],
        )
        for (tool, phase), histogram in sorted(stats.durations().items()):
            buckets = [(_le(bound), n) for bound, n in zip(DURATION_BUCKETS, histogram.buckets, strict=True)]
            buckets.append(("+Inf", histogram.count))
            durations.add_metric([tool, phase], buckets, histogram.total)
        yield durations

        callbacks = CounterMetricFamily(
            "fluxserve_callbacks",
            "Callback deliveries that ended, by result (delivered, failed).",
            labels=["result"],
        )
        counts = stats.callbacks()
        for result in ("delivered", "failed"):
            callbacks.add_metric([result], counts.get(result, 0))
        yield callbacks
        yield GaugeMetricFamily(
            "fluxserve_callbacks_pending",
            "Callback deliveries waiting for their next try.",
            value=counts.get("pending", 0),
        )


def _per_tool(name: str, documentation: str, tools: list[str], values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["tool"])
    for tool in sorted(set(tools) | set(values)):
        family.add_metric([tool], values.get(tool, 0))
    return family


def _threads_by_tool(rows: Iterable[WorkerRow]) -> dict[str, int]:
    """Worker threads per tool, from the live rows of the worker directory (any process or machine)."""
    counts: Counter[str] = Counter()
    for row in rows:
        for tool in row.info.tools:
            counts[tool] += row.info.threads
    return dict(counts)


def _le(bound: float) -> str:
    return str(float(bound))


def build_registry(store: TaskStore, tools: Callable[[], Iterable[str]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, tools))
    return registry
