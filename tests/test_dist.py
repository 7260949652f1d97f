"""Scale-out on a real Dask LocalCluster (two worker processes on loopback)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from tests.conftest import need


def tiny_image(seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A small Loihi-native network compiled to an image, and 40 input samples."""
    from ir.random_graphs import random_loihi_graph
    from nmc import api

    # the first random Loihi graph from ``seed`` on with a single input port
    g = next(h for k in range(seed, seed + 100) if len((h := random_loihi_graph(k)).inputs) == 1)
    compiled = api.compile(g, "loihi")
    rng = np.random.default_rng(seed)
    (inp,) = g.inputs
    x = (rng.random((40, 20, *inp.shape)) < 0.2).astype(np.uint8)
    return compiled.image, x


def test_in_process_batches_equal_one_big_run():
    from nmc.dist import evaluate

    image, x = tiny_image()
    whole = evaluate(image, x, batch_size=40)
    parts = evaluate(image, x, batch_size=7)
    assert whole.outputs.keys() == parts.outputs.keys()
    for k in whole.outputs:
        np.testing.assert_array_equal(whole.outputs[k], parts.outputs[k])
    assert whole.stats.get("counters") == parts.stats.get("counters")


@pytest.fixture(scope="module")
def cluster():
    need("distributed")
    from dask.distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                     host="127.0.0.1")
    yield c
    c.close()


def test_cluster_results_identical_to_in_process(cluster):
    from nmc.dist import evaluate

    image, x = tiny_image(1)
    here = evaluate(image, x, batch_size=8)
    there = evaluate(image, x, batch_size=8, scheduler=cluster.scheduler_address)
    assert there.workers == 2
    for k in here.outputs:
        np.testing.assert_array_equal(here.outputs[k], there.outputs[k])
    assert here.stats.get("counters") == there.stats.get("counters")


def test_killed_worker_loses_no_sample(cluster):
    from dask.distributed import Client

    from nmc.dist import evaluate

    image, x = tiny_image(2)
    reference = evaluate(image, x, batch_size=4)
    client = Client(cluster.scheduler_address)
    pids = client.run(os.getpid)
    client.close()
    victim = sorted(pids.values())[0]
    result = {}

    def go():
        result["ev"] = evaluate(image, x, batch_size=4, scheduler=cluster.scheduler_address,
                                run_options={"_sleep_s": 0.3})

    t = threading.Thread(target=go)
    t.start()
    time.sleep(1.0)  # some batches are running or queued on the victim
    os.kill(victim, signal.SIGKILL)
    t.join(timeout=120)
    assert not t.is_alive(), "evaluation hung after a worker was killed"
    ev = result["ev"]
    assert ev.failures == []
    for k in reference.outputs:
        np.testing.assert_array_equal(reference.outputs[k], ev.outputs[k])


def test_failing_sample_is_reported_with_its_index():
    from nmc.dist import evaluate

    image, x = tiny_image(3)
    bad = x.astype(np.int64)
    bad[5, 3, 0] = 7  # not a spike: the emulator rejects the sample
    ev = evaluate(image, bad, batch_size=4)
    assert [f.index for f in ev.failures] == [5]
    assert ev.outputs  # the other samples ran
