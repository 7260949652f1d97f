"""Shared helpers of the examples: data, spike encoders, readouts, model.json writing, runners.

Every example trains a network with its own rule (numpy only), writes it as ``model.json`` plus a
weight file, and records its accuracies in ``results.json``. The helpers here are deliberately
small and free of any training rule, so each ``train.py`` reads on its own.

Nothing is downloaded: ``sklearn.datasets.load_digits`` ships inside scikit-learn.

Time convention (same as the IR, see ``ir/nodes.py``): step ``t`` covers ``[t*dt, (t+1)*dt)``;
an input array is ``(batch, steps, *shape)``; generic connections are instantaneous (a spike at
step ``t`` drives its targets at step ``t``), a connection with ``delay = d`` drives them at ``t+d``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
if str(ROOT) not in sys.path:  # so that train.py, run as a script, can import ir and nmc
    sys.path.insert(0, str(ROOT))

# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def load_digits_split(
    test_fraction: float = DIGITS_TEST_FRACTION, seed: int = DIGITS_SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8x8 digits of scikit-learn (1797 images), scaled to [0, 1], split once and for all.

    Returns ``(x_train, y_train, x_test, y_test)``; ``x`` is ``(n, 64)`` float64 in [0, 1]
    (pixel value / 16), ``y`` int64 labels 0..9. The split is stratified and seeded, so every
    example and every test sees the same 360 test images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return xtr, ytr, xte, yte


# ------------------------------------------------------------------------------------------
# Spike encoders
# ------------------------------------------------------------------------------------------
def rate_encode(
    x: np.ndarray,
    steps: int,
    *,
    method: str = "deterministic",
    max_rate: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Rate code: intensity ``x`` in [0, 1] becomes a spike train of mean rate ``x*max_rate``
    spikes per step. Returns ``(B, steps, *x.shape[1:])`` float64 of 0/1.

    * ``deterministic``: an integrate-and-fire encoder with the accumulator started at one half,
      ``s[t] = floor((t+1) r + 1/2) - floor(t r + 1/2)`` with ``r = x*max_rate``: the count after
      ``t`` steps is ``t r`` rounded, spikes evenly spaced; no randomness.
    * ``poisson``: independent Bernoulli draws with probability ``r`` per step (needs ``rng``).
    """
    x = np.asarray(x, dtype=np.float64)
    r = np.clip(x * max_rate, 0.0, 1.0)
    if method == "deterministic":
        t = np.arange(steps + 1, dtype=np.float64).reshape((1, steps + 1) + (1,) * (x.ndim - 1))
        counts = np.floor(t * r[:, None] + 0.5)
        return np.diff(counts, axis=1)
    if method == "poisson":
        if rng is None:
            raise ValueError("rate_encode(method='poisson') needs rng=np.random.default_rng(seed)")
        shape = (x.shape[0], steps) + x.shape[1:]
        return (rng.random(shape) < r[:, None]).astype(np.float64)
    raise ValueError(f"rate_encode: method {method!r} is not 'deterministic' or 'poisson'")


def rate_encode_sequence(intensity: np.ndarray) -> np.ndarray:
    """Deterministic rate code of a time-varying intensity ``(B, T, ...)`` in [0, 1]: the
    integrate-and-fire encoder of :func:`rate_encode` (accumulator started at one half) fed with
    ``intensity[:, t]`` at step ``t``, so ``s[t] = floor(c[t] + 1/2) - floor(c[t-1] + 1/2)`` with
    ``c`` the running sum of the intensity. A constant intensity gives :func:`rate_encode`."""
    c = np.cumsum(np.clip(np.asarray(intensity, dtype=np.float64), 0.0, 1.0), axis=1)
    counts = np.floor(c + 0.5)
    return np.diff(counts, axis=1, prepend=np.zeros_like(counts[:, :1]))


def sequential_digits(x: np.ndarray, steps_per_row: int, delay: int) -> np.ndarray:
    """The "sequential digits" task input: an 8x8 digit shown one row per ``steps_per_row`` steps
    (8 input channels, one per column, deterministic rate code of the pixel values), then
    ``delay`` silent steps. Returns ``(B, 8 * steps_per_row + delay, 8)`` of 0/1."""
    rows = np.asarray(x, dtype=np.float64).reshape(-1, 8, 8)
    intensity = np.repeat(rows, steps_per_row, axis=1)  # (B, 8*R, 8): row r at steps [rR, (r+1)R)
    intensity = np.concatenate([intensity, np.zeros((len(rows), delay, 8))], axis=1)
    return rate_encode_sequence(intensity)


def latency_encode(
    x: np.ndarray, steps: int, *, t_max: int | None = None, threshold: float = 0.0
) -> np.ndarray:
    """Latency (time-to-first-spike) code: each input above ``threshold`` spikes exactly once,
    at step ``round((1 - x) * t_max)`` (bright pixels first); the others never spike.

    ``t_max`` defaults to ``steps - 1``. Returns ``(B, steps, *x.shape[1:])`` float64 of 0/1.
    """
    x = np.asarray(x, dtype=np.float64)
    t_max = steps - 1 if t_max is None else t_max
    if not 0 <= t_max < steps:
        raise ValueError(f"latency_encode: t_max = {t_max} must be in [0, steps)")
    t_spk = np.rint((1.0 - np.clip(x, 0.0, 1.0)) * t_max).astype(np.int64)
    out = np.zeros((x.shape[0], steps) + x.shape[1:])
    on = x > threshold
    idx = np.nonzero(on)
    out[(idx[0], t_spk[idx]) + idx[1:]] = 1.0
    return out


# ------------------------------------------------------------------------------------------
# Readouts and evaluation (work on the outputs of any runner: float interpreter, integer
# interpreter or emulator, as long as they are (B, T, n) arrays)
# ------------------------------------------------------------------------------------------
READOUTS = ("count", "first_spike", "fires", "assigned", "mean_value")


def first_spike_times(spikes: np.ndarray) -> np.ndarray:
    """Step of the first spike per sample and neuron, ``T`` where a neuron never spikes.

    ``spikes`` is ``(B, T, n)``; the result is ``(B, n)`` int64.
    """
    s = np.asarray(spikes) > 0
    t_len = s.shape[1]
    first = np.argmax(s, axis=1)
    return np.where(s.any(axis=1), first, t_len).astype(np.int64)


def predict(
    outputs: np.ndarray,
    readout: str = "count",
    *,
    assignment: np.ndarray | None = None,
    window: tuple[int, int] | None = None,
    n_classes: int | None = None,
) -> np.ndarray:
    """Class predictions ``(B,)`` from an output record ``(B, T, n)``.

    Readouts (``window = (start, stop)`` restricts the steps looked at; default: all):

    * ``count``: most output spikes wins; ties go to the lowest index.
    * ``first_spike``: earliest first spike wins; ties broken by more spikes, then lowest index;
      a sample with no output spike at all predicts class 0.
    * ``fires``: binary decision of a single output neuron: 1 if it spikes at all, else 0.
    * ``assigned``: each output neuron votes for its assigned class (``assignment[n]``); the
      class whose neurons spiked most on average wins (Diehl & Cook 2015).
    * ``mean_value``: largest mean of a non-spiking output (a membrane) over the window.
    """
    from nmc.readout import predict as _predict

    return _predict(outputs, readout, assignment=assignment, window=window, n_classes=n_classes)


def evaluate(
    graph: Any,
    inputs: np.ndarray,
    labels: np.ndarray,
    readout: str = "count",
    *,
    runner: Any = None,
    output: str | None = None,
    steps: int | None = None,
    **readout_args: Any,
) -> dict[str, Any]:
    """Run ``graph`` on ``inputs`` with ``runner`` and score the predictions against ``labels``.

    ``runner(graph, inputs, steps)`` returns a dict of output records ``(B, T, n)`` by output
    name (default: :func:`run_float_outputs`, the float reference interpreter); any other runner
    (integer interpreter, emulator of a chip family) plugs in here. ``output`` picks the output
    (default: the only one). Returns ``{"accuracy", "predictions", "outputs"}``.
    """
    runner = runner or run_float_outputs
    outs = runner(graph, inputs, steps)
    if output is None:
        if len(outs) != 1:
            raise ValueError(f"graph has outputs {sorted(outs)}; pass output=NAME")
        output = next(iter(outs))
    pred = predict(outs[output], readout, **readout_args)
    labels = np.asarray(labels)
    return {
        "accuracy": float(np.mean(pred == labels)),
        "predictions": pred,
        "outputs": outs[output],
    }


# ------------------------------------------------------------------------------------------
# Loading and running models (the real loader and float interpreter)
# ------------------------------------------------------------------------------------------
def load_model(path: str | os.PathLike) -> Any:
    """Load a model.json into an IR graph with ``nmc.frontends.model_json.load_model_json``."""
    from nmc.frontends.model_json import load_model_json

    return load_model_json(Path(path))


def run_float_outputs(graph: Any, inputs: np.ndarray, steps: int | None = None) -> dict:
    """Run ``graph`` with the float reference interpreter; output records by name."""
    from ir.interp_float import run_float

    res = run_float(graph, inputs, steps)
    return dict(res.outputs)


def interpreter_accuracy(
    path: str | os.PathLike,
    inputs: np.ndarray,
    labels: np.ndarray,
    readout: str = "count",
    **readout_args: Any,
) -> float | None:
    """Accuracy of the written model file under the real loader + float interpreter, or None
    when they cannot be imported yet (train.py records it next to its own simulation's)."""
    if not interpreter_available():
        return None
    graph = load_model(path)
    return evaluate(graph, inputs, labels, readout, **readout_args)["accuracy"]


def interpreter_available() -> bool:
    """True when both the model.json loader and the float interpreter can be imported."""
    try:
        import ir.interp_float  # noqa: F401
        import nmc.frontends.model_json  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Writing model.json (format: docs/model-json.md)
# ------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; committed files are world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


class ModelWriter:
    """Collects a model.json document and its arrays, then writes both atomically.

    Arrays go into one ``.npz`` next to the JSON (``<stem>.npz``) and are referenced as
    ``{"file": "<stem>.npz", "key": name}``, as docs/model-json.md describes.

    >>> m = ModelWriter("digits_mlp", dt=1e-3)
    >>> m.input("x", [64])
    >>> m.population("h", "IF", [100], v_threshold=1.0, reset="subtract")
    >>> m.connection("x", "h", "dense", weight=m.array("w1", w1))
    """

    def __init__(self, name: str, *, dt: float = 1e-3):
        self.doc: dict[str, Any] = {
            "format": "nmc-model",
            "version": 1,
            "name": name,
            "dt": float(dt),
            "inputs": [],
            "populations": [],
            "connections": [],
            "outputs": [],
            "provenance": {},
        }
        self.arrays: dict[str, np.ndarray] = {}
        self._file = "<npz>"  # placeholder until write() knows the file name

    def array(self, key: str, value: np.ndarray) -> dict[str, str]:
        """Register an array; returns the file reference to put in the document."""
        if key in self.arrays:
            raise ValueError(f"array {key!r} registered twice")
        self.arrays[key] = np.ascontiguousarray(value)
        return {"file": self._file, "key": key}

    def input(self, name: str, shape: Sequence[int]) -> None:
        self.doc["inputs"].append({"name": name, "shape": [int(s) for s in shape]})

    def population(self, name: str, kind: str, shape: Sequence[int], **params: Any) -> None:
        self.doc["populations"].append(
            {
                "name": name,
                "kind": kind,
                "shape": [int(s) for s in shape],
                "params": _jsonable(params),
            }
        )

    def connection(self, source: str, target: str, type: str, **fields: Any) -> None:
        entry = {"source": source, "target": target, "type": type}
        entry.update({k: _jsonable(v) for k, v in fields.items()})
        self.doc["connections"].append(entry)

    def output(self, name: str, source: str) -> None:
        self.doc["outputs"].append({"name": name, "source": source})

    def provenance(self, **info: Any) -> None:
        self.doc["provenance"].update(_jsonable(info))

    def _point_refs(self, obj: Any, npz_name: str) -> Any:
        """A copy of ``obj`` whose array references name the npz that belongs to this JSON."""
        if isinstance(obj, dict):
            if obj.get("file") == self._file and set(obj) == {"file", "key"}:
                return {"file": npz_name, "key": obj["key"]}
            return {k: self._point_refs(v, npz_name) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._point_refs(v, npz_name) for v in obj]
        return obj

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (the JSON) and ``<stem>.npz`` beside it; returns the JSON path."""
        path = Path(path)
        npz_name = path.with_suffix(".npz").name
        text = json.dumps(self._point_refs(self.doc, npz_name), indent=1)
        import io

        buf = io.BytesIO()
        np.savez(buf, **self.arrays)
        _atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
        _atomic_write_bytes(path, (text + "\n").encode())
        return path


def save_test_inputs(folder: str | os.PathLike, spikes: np.ndarray, labels: np.ndarray) -> Path:
    """Write ``test_inputs.npz`` (``spikes`` (B, T, *shape) as uint8, ``labels`` (B,)) beside a
    model: the encoded held-out set, ready for ``nmc run model.json --input test_inputs.npz``."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(
        buf, spikes=np.asarray(spikes).astype(np.uint8), labels=np.asarray(labels).astype(np.int64)
    )
    path = Path(folder) / "test_inputs.npz"
    _atomic_write_bytes(path, buf.getvalue())
    return path


def stored_test_inputs(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(spikes as float64, labels)`` from a folder's ``test_inputs.npz``."""
    with np.load(Path(folder) / "test_inputs.npz", allow_pickle=False) as z:
        return z["spikes"].astype(np.float64), z["labels"]


def write_results(folder: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write ``results.json`` in ``folder`` (atomically, sorted keys, stable float text)."""
    path = Path(folder) / "results.json"
    _atomic_write_bytes(
        path, (json.dumps(_jsonable(results), indent=1, sort_keys=True) + "\n").encode()
    )
    return path


class Timer:
    """Wall-clock seconds since creation (for the results table)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 1)


# ------------------------------------------------------------------------------------------
# Optimiser (used by the gradient-based examples)
# ------------------------------------------------------------------------------------------
class Adam:
    """Adam (Kingma & Ba 2015) over a dict of numpy arrays, updated in place."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, betas[0], betas[1], eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            self.params[k] -= self.lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)


def softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` and its gradient with respect to ``logits``."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -float(np.mean(np.log(p[np.arange(n), labels] + 1e-12)))
    g = p.copy()
    g[np.arange(n), labels] -= 1.0
    return loss, g / n
