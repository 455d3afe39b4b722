"""`kubernaut run`'s Ray: Serve's own `serve run`, on a local Ray started without the dashboard's web UI.

`serve run` starts a local Ray with ``ray.init()``, and with it the dashboard head and its nine module processes
(NodeHead, StateHead, JobHead, ServeHead, MetricsHead, ReportHead, EventHead, DataHead, TrainHead, and their
forkserver): about 190 MB PSS of the laptop configuration's 2 GB at idle (bench/pipeline.py, bench/RESULTS.md).
Kubernaut uses none of them: its API and console are the gateway's (the console reads ``serve.status()`` in
process), and Ray's metrics come from each node's dashboard agent, which starts either way. With
``include_dashboard=False`` the dashboard head runs alone with its usage-stats module.

Nor does it start Ray's autoscaler monitor (``monitor.py``, ~48 MB PSS): it adds and removes *nodes* of a cluster, of
which a laptop has one; Serve's own autoscaling (replicas) runs in Serve's controller and does not use it. `ray start`
has ``--no-monitor`` for this; ``ray.init()`` has no argument for it, so its ``RayParams`` are given it here.

``kubernaut run --ray-dashboard`` runs plain `serve run` instead (Ray's web UI on 127.0.0.1:8265, `serve status`,
`ray list`). When ``ray.init()`` joins a running cluster (RAY_ADDRESS, or the last `ray start` on this machine),
that cluster keeps whatever its `ray start` chose.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_autoscaler_monitor() -> Iterator[None]:
    """While entered, a Ray head that ``ray.init()`` starts gets ``no_monitor=True`` (what `ray start --no-monitor`
    sets); joining a running cluster starts no head and is unaffected."""
    from ray._private import parameter

    original = parameter.RayParams

    class RayParams(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("no_monitor", True)
            super().__init__(*args, **kwargs)

    parameter.RayParams = RayParams
    try:
        yield
    finally:
        parameter.RayParams = original


def main(argv: list[str] | None = None) -> int:
    """``python -m kubernaut.local_ray run <config>``: start (or join) Ray without the dashboard modules and the
    autoscaler monitor, then
    `serve run` with the same arguments, which finds Ray initialized and uses it."""
    import ray
    from ray.serve._private.constants import SERVE_NAMESPACE  # the namespace `serve run` itself connects with
    from ray.serve.scripts import cli

    with without_autoscaler_monitor():
        ray.init(namespace=SERVE_NAMESPACE, include_dashboard=False)
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="serve")
    return 0  # not reached: click exits


if __name__ == "__main__":
    sys.exit(main())
