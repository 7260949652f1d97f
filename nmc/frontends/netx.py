"""lava-dl netx import (``.net``: lava-dl's HDF5 network exchange format; extra ``nmc[nir]`` for h5py).

A netx file holds a network trained for Loihi with its integer parameters already chosen, so it
imports straight into ``loihi`` native kinds (stage ``quantized``) and ``quantize`` leaves it as it is.

What the layers become (facts from lava-dl's ``netx/hdf5.py`` and ``netx/utils.py``, lava-nc/lava-dl):

* neuron groups of type ``CUBA`` or ``LOIHI``: :class:`~ir.native.loihi.LoihiCompartment` with
  ``vth_mant = vThMant``, ``du = iDecay - 1`` (lava-dl stores the current decay one above Lava's
  ``du``), ``dv = vDecay``, ``bias_exp = 6`` and ``bias_mant`` from the layer's ``bias``;
* ``dense``: :class:`~ir.native.loihi.LoihiDense`. Weights are read as integers (truncated, as
  netx does) and fitted to the synapse with netx's own rule: the sign mode from the signs present,
  a left shift by ``scale_bits = floor(log2(scale)) + is_signed`` (``scale`` = how far the largest
  magnitude is from the 8-bit limit), ``weight_exp = -scale_bits`` and
  ``num_weight_bits = 8 - scale_bits - n`` where ``2**(n + is_signed)`` divides every weight;
* ``conv``: lowered to :class:`~ir.native.loihi.LoihiSparse` (PyTorch cross-correlation layout
  ``(C_out, C_in/groups, kh, kw)``; the neuron group's ``wgtExp`` is the weight exponent; weights are
  stored doubled with one less exponent when an odd weight would not fit the mixed 8-bit grid, which
  gives the same integer sum);
* ``pool``: a sum-pooling :class:`~ir.native.loihi.LoihiSparse` with the layer's weight;
* ``flatten``: nothing to do, as populations are kept flat in C, H, W order;
* ``input``: a bias-driven compartment population (lava-dl's input block); its bias can be replaced
  with ``input_bias`` (a (C, H, W) array) as lava-dl's own tests do.

Each synapse has Lava's one-step delay. ``graph.attrs["layer_shapes"]`` keeps the (C, H, W) shape of
every population.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import FrontendError, IRError, NmcWarning
from ir.graph import Graph, GraphBuilder, Stage
from ir.native.loihi import LoihiCompartment, LoihiDense, LoihiSparse
from ir.nodes import Input, Output, conv_out_len


def _h5py():
    try:
        import h5py
    except ImportError:
        raise FrontendError("reading lava-dl .net files needs h5py: pip install 'nmc[nir]'") from None
    return h5py


def netx_weight_fit(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """netx's weight fitting (see the module doc): returns (weights, num_weight_bits, weight_exp,
    sign_mode) with weights clipped to [-256, 254] when they do not fit, as netx does."""
    w = np.asarray(weight, dtype=np.int64)
    wmax, wmin = int(w.max(initial=0)), int(w.min(initial=0))
    if wmax > 254 and wmin < 0 or wmin < -256 and wmax > 0:
        warnings.warn(f"weights [{wmin}, {wmax}] do not fit a mixed-sign synapse; clipped to "
                      "[-256, 254] as lava-dl does", NmcWarning, stacklevel=3)
        w = np.clip(w, -256, 254)
        wmax, wmin = int(w.max(initial=0)), int(w.min(initial=0))
    if wmax < 0:
        sign, signed, scale = "inhibitory", 0, -256 / wmin
    elif wmin >= 0:
        sign, signed = "excitatory", 0
        scale = 255 / wmax if wmax > 0 else 1.0
    else:
        sign, signed = "mixed", 1
        scale = min(127 / wmax, -128 / wmin)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(w % (2**n)):
        n -= 1
    n -= signed
    nwb = 8 - scale_bits - n
    shifted = w << scale_bits if scale_bits >= 0 else w >> -scale_bits
    return shifted, int(nwb), int(-scale_bits), sign


def _legal(node_w: np.ndarray, nwb: int, sign: str) -> np.ndarray:
    """Clip to the sign mode's range and truncate toward zero to the weight grid (Lava's rule)."""
    lo, hi = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}[sign]
    step = 2 ** (8 - nwb + (sign == "mixed"))
    w = np.clip(np.asarray(node_w, dtype=np.int64), lo, hi)
    return (np.sign(w) * (np.abs(w) // step) * step).astype(np.int64)


def conv2d_coo(in_shape: tuple[int, int, int], weight: np.ndarray, stride, padding, dilation,
               groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int]]:
    """A 2-D cross-correlation as COO triplets (rows = flat output index, cols = flat input index,
    values) over C-order (C, H, W) populations; zero weights and padded taps are dropped."""
    c_in, h, w_ = in_shape
    c_out, cg, kh, kw = weight.shape
    ho = conv_out_len(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_len(w_, kw, stride[1], padding[1], dilation[1])
    og = c_out // groups
    o, cl, u, v, i, j = np.meshgrid(np.arange(c_out), np.arange(cg), np.arange(kh), np.arange(kw),
                                    np.arange(ho), np.arange(wo), indexing="ij", sparse=True)
    c = (o // og) * cg + cl
    y = i * stride[0] - padding[0] + u * dilation[0]
    x = j * stride[1] - padding[1] + v * dilation[1]
    shape = np.broadcast_shapes(o.shape, cl.shape, u.shape, v.shape, i.shape, j.shape)
    vals = np.broadcast_to(weight[o, cl, u, v], shape)
    ok = np.broadcast_to((y >= 0) & (y < h) & (x >= 0) & (x < w_), shape) & (vals != 0)
    rows = np.broadcast_to((o * ho + i) * wo + j, shape)[ok]
    cols = np.broadcast_to((c * h + y) * w_ + x, shape)[ok]
    return rows.astype(np.int64), cols.astype(np.int64), vals[ok], (c_out, ho, wo)


class _Reader:
    """Typed access to the datasets of a netx file: every accessor checks what it reads and
    names ``file: /layer/k/key`` in its error (a mutated or foreign file can hold anything)."""

    def __init__(self, path: Path, tree: _Group):
        self.path = path
        self.f = tree

    def where(self, key: str) -> str:
        return f"{self.path.name}: /{key}"

    def _key(self, group, key: str) -> str:
        return group.name.strip("/") + "/" + key

    def get(self, group, key: str, default: Any = None, *, required: bool = True) -> Any:
        if key not in group:
            if required and default is None:
                raise FrontendError(f"{self.where(self._key(group, key))}: missing")
            return default
        v = group[key]
        if isinstance(v, _Group):
            raise FrontendError(f"{self.where(self._key(group, key))}: expected a dataset, got a "
                                "group")
        if isinstance(v, bytes):
            return v.decode("ascii", errors="replace")
        if isinstance(v, np.ndarray) and v.dtype.kind in "SO" and v.size:
            first = v.reshape(-1)[0]
            return first.decode("ascii", errors="replace") if isinstance(first, bytes) else first
        return v

    def text(self, group, key: str) -> str:
        v = self.get(group, key)
        if not isinstance(v, str):
            raise FrontendError(f"{self.where(self._key(group, key))}: expected a string, got "
                                f"{_short(v)}")
        return v

    def array(self, group, key: str, default: Any = None, *, required: bool = True) -> np.ndarray:
        """A finite real array (NaN or inf would silently become garbage integers)."""
        v = self.get(group, key, default, required=required)
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise FrontendError(f"{self.where(self._key(group, key))}: expected numbers, got "
                                f"{_short(v)}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise FrontendError(f"{self.where(self._key(group, key))}: has NaN or infinite values")
        if a.size and np.max(np.abs(a)) > 2.0**62:
            raise FrontendError(f"{self.where(self._key(group, key))}: values out of range "
                                f"(|x| up to {np.max(np.abs(a)):g})")
        return a

    def ints(self, group, key: str, default: Any = None, *, required: bool = True,
             lo: int | None = None, count: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """Integers (a scalar or a list), each >= ``lo``, ``len`` in ``count``."""
        a = self.array(group, key, default, required=required).reshape(-1)
        where = self.where(self._key(group, key))
        if np.any(a != np.round(a)):
            raise FrontendError(f"{where}: expected integers, got {_short(a)}")
        vals = tuple(int(x) for x in a.tolist())
        if count is not None and len(vals) not in count:
            raise FrontendError(f"{where}: expected {' or '.join(map(str, count))} value(s), got "
                                f"{len(vals)}")
        if lo is not None and any(x < lo for x in vals):
            raise FrontendError(f"{where}: expected integers >= {lo}, got {list(vals)}")
        return vals

    def int(self, group, key: str, default: Any = None, *, required: bool = True,
            lo: int | None = None) -> int:
        return self.ints(group, key, default, required=required, lo=lo, count=(1,))[0]


def _short(x: Any) -> str:
    text = repr(x.tolist() if isinstance(x, np.ndarray) else x)
    return text if len(text) <= 60 else text[:57] + "..."


def load_netx(path: str | Path, *, input_bias: np.ndarray | None = None,
              name: str | None = None) -> Graph:
    """Read a lava-dl ``.net`` file into a loihi-native graph (see the module doc)."""
    from nmc.resources import call_with_deadline

    path = Path(path)
    if not path.is_file():
        raise FrontendError(f"{path}: no such file")
    _h5py()  # a missing h5py is reported here, not in the reading process
    # The HDF5 library can spin forever on a damaged file: read it in a child process that is
    # killed at the deadline (nmc.resources.call_with_deadline), then build here.
    tree = call_with_deadline(_read_tree, path, what=f"{path}: reading the HDF5 file")
    r = _Reader(path, tree)
    try:
        return _build(r, input_bias, name or path.stem)
    except IRError as e:
        raise FrontendError(f"{path}: {e}") from e


class _Group(dict):
    """An HDF5 group read into memory: member name -> _Group or the dataset's value."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __reduce__(self):  # pickled across the reading process's pipe
        return (_rebuild_group, (self.name, dict(self)))


def _rebuild_group(name: str, items: dict) -> _Group:
    g = _Group(name)
    g.update(items)
    return g


def _read_tree(path: Path) -> _Group:
    """The whole file as nested :class:`_Group` dicts (runs in the reading process)."""
    from nmc.resources import check_hdf5

    h5py = _h5py()
    try:
        # Refuse a file whose datasets declare more than the memory limit before reading any.
        check_hdf5(path, str(path))

        def walk(g) -> _Group:
            out = _Group(g.name)
            for k, v in g.items():
                out[k] = walk(v) if isinstance(v, h5py.Group) else v[()]
            return out

        with h5py.File(path, "r") as f:
            return walk(f)
    except OSError as e:
        reason = _h5_reason(e)
        if reason == "not an HDF5 file":
            raise FrontendError(f"{path}: not an HDF5 file; lava-dl netx files are HDF5 (written "
                                "by lava-dl's netx export)") from None
        raise FrontendError(f"{path}: not a readable netx file ({reason})") from None
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        # h5py reports damage found while reading a dataset through these.
        raise FrontendError(f"{path}: damaged netx file ({type(e).__name__}: {e})") from None


def _h5_reason(e: OSError) -> str:
    """Why HDF5 could not open a file, in one short clause."""
    text = str(e)
    if "file signature not found" in text:
        return "not an HDF5 file"
    if "truncated file" in text:
        return "the HDF5 file is truncated"
    return text.splitlines()[0] if text else "a damaged HDF5 file"


def _compartment(r: _Reader, layer, lname: str, size: int, bias: np.ndarray | None):
    key = f"layer/{lname}/neuron"
    if "neuron" not in layer or not isinstance(layer["neuron"], _Group):
        raise FrontendError(f"{r.where(key)}: missing (every layer needs its neuron group)")
    nc = layer["neuron"]
    kind = r.text(nc, "type")
    if kind not in ("CUBA", "LOIHI"):
        raise FrontendError(f"{r.where(key + '/type')}: neuron type {kind!r} is not supported "
                            "(CUBA and LOIHI are)")
    ref = r.int(nc, "refDelay", 1, required=False, lo=0)
    if ref > 1:
        warnings.warn(f"{r.where(key + '/refDelay')}: refractory delay {ref} is modelled as "
                      f"{ref - 1} silent steps", NmcWarning, stacklevel=3)
    params = dict(
        du=r.int(nc, "iDecay") - 1, dv=r.int(nc, "vDecay"),
        vth_mant=r.int(nc, "vThMant"), bias_exp=6, refractory=max(0, ref - 1),
    )
    wexp = r.int(nc, "wgtExp", 0, required=False)
    return params, wexp


def _build(r: _Reader, input_bias, name: str) -> Graph:  # noqa: C901 - one branch per layer type
    from nmc.resources import check_neurons, require

    f = r.f
    if "layer" not in f or not isinstance(f["layer"], _Group):
        raise FrontendError(f"{r.where('layer')}: missing; not a lava-dl netx file")
    layers = f["layer"]
    keys = sorted(layers.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
    b = GraphBuilder(name, stage=Stage.QUANTIZED, attrs={
        "target": "loihi", "provenance": {"format": "lava-dl netx", "file": r.path.name}})
    shapes: dict[str, list[int]] = {}
    prev: str | None = None          # the population feeding the next layer
    prev_shape: tuple[int, ...] | None = None
    for k in keys:
        layer = layers[k]
        if not isinstance(layer, _Group):
            raise FrontendError(f"{r.where(f'layer/{k}')}: expected a layer group, got a dataset")
        ltype = r.text(layer, "type")
        pop = f"layer{k}"
        if ltype == "flatten":
            continue
        if ltype == "input":
            shape = r.ints(layer, "shape", lo=1)
            if not shape:
                raise FrontendError(f"{r.where(f'layer/{k}/shape')}: empty shape")
            check_neurons(math.prod(shape), r.where(f"layer/{k}/shape"), fix="check the shape")
            size = math.prod(shape)
            params, _ = _compartment(r, layer, k, size, None)
            if input_bias is not None:
                bias = np.asarray(input_bias)
                if bias.shape != shape:
                    raise FrontendError(f"input_bias has shape {list(bias.shape)}, the input "
                                        f"layer is {list(shape)} (C, H, W)")
            else:
                b0 = r.array(layer, "bias", 0, required=False).reshape(-1)
                bias = np.full(shape, float(b0[0]) if b0.size else 0.0)
            bias = np.trunc(bias).astype(np.int64).reshape(-1)
            b.add(LoihiCompartment(name=pop, shape=(size,), bias_mant=_param(b, pop, bias),
                                   **params))
            shapes[pop] = list(shape)
            prev, prev_shape = pop, shape
            continue
        if ltype not in ("dense", "conv", "pool"):
            raise FrontendError(f"{r.where(f'layer/{k}/type')}: layer type {ltype!r} is not "
                                "supported (input, dense, conv, pool, flatten are)")
        if prev is None:  # the first synaptic layer reads the network input
            if ltype != "dense":
                raise FrontendError(f"{r.where(f'layer/{k}')}: a conv/pool first layer needs an "
                                    "input layer giving its shape")
            n_in = r.int(layer, "inFeatures", lo=1)
            check_neurons(n_in, r.where(f"layer/{k}/inFeatures"), fix="check the layer sizes")
            prev = b.add(Input(name="x", shape=(n_in,)))
            prev_shape = (n_in,)
        n_prev = math.prod(prev_shape)
        params, wexp = _compartment(r, layer, k, 0, None)
        conn = f"{pop}_syn"
        if ltype == "dense":
            w = np.trunc(r.array(layer, "weight").astype(np.float64)).astype(np.int64)
            if w.ndim == 1 and w.size % n_prev == 0 and w.size:
                w = w.reshape(-1, n_prev)
            if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] != n_prev:
                raise FrontendError(f"{r.where(f'layer/{k}/weight')}: shape {list(w.shape)}, "
                                    f"expected [outputs, {n_prev}] (the previous layer has "
                                    f"{n_prev} neurons)")
            wq, nwb, exp, sign = netx_weight_fit(w)
            b.add(LoihiDense(name=conn, in_features=n_prev, out_features=w.shape[0],
                             weight=b.const(f"{conn}.weight", _legal(wq, nwb, sign)),
                             weight_exp=exp, num_weight_bits=nwb, sign_mode=sign), prev)
            out_shape: tuple[int, ...] = (w.shape[0],)
        else:
            if len(prev_shape) != 3:
                raise FrontendError(f"{r.where(f'layer/{k}')}: needs a (C, H, W) input, the "
                                    f"previous layer is {list(prev_shape)}")
            if ltype == "conv":
                w = r.array(layer, "weight")
                if w.ndim < 4 or math.prod(w.shape[4:]) != 1:
                    raise FrontendError(f"{r.where(f'layer/{k}/weight')}: shape {list(w.shape)}, "
                                        "expected (out, in/groups, kh, kw[, 1])")
                w = np.trunc(w.reshape(w.shape[:4])).astype(np.int64)
                stride = r.ints(layer, "stride", lo=1, count=(2,))
                padding = r.ints(layer, "padding", lo=0, count=(2,))
                dilation = r.ints(layer, "dilation", lo=1, count=(2,))
                groups = r.int(layer, "groups", lo=1)
                c_in = prev_shape[0]
                if c_in % groups or w.shape[0] % groups or w.shape[1] * groups != c_in \
                        or 0 in w.shape:
                    raise FrontendError(
                        f"{r.where(f'layer/{k}/weight')}: shape {list(w.shape)} with groups = "
                        f"{groups} does not fit a previous layer of {c_in} channels"
                    )
            else:  # pool: every channel sums its own window with the layer's scalar weight
                ks = r.ints(layer, "kernelSize", lo=1, count=(1, 2))
                ks = ks * 2 if len(ks) == 1 else ks
                pw_all = r.array(layer, "weight").reshape(-1)
                if not pw_all.size:
                    raise FrontendError(f"{r.where(f'layer/{k}/weight')}: empty")
                pw = int(np.trunc(pw_all[0]))
                c = prev_shape[0]
                stride = r.ints(layer, "stride", ks, required=False, lo=1, count=(1, 2))
                stride = stride * 2 if len(stride) == 1 else stride
                padding = (0, 0)
                dilation = (1, 1)
                groups = c
                w = None
            kh, kw = (w.shape[2], w.shape[3]) if w is not None else ks
            ho = conv_out_len(prev_shape[1], kh, stride[0], padding[0], dilation[0])
            wo = conv_out_len(prev_shape[2], kw, stride[1], padding[1], dilation[1])
            if ho <= 0 or wo <= 0:
                raise FrontendError(f"{r.where(f'layer/{k}')}: a {kh}x{kw} kernel does not fit "
                                    f"the previous layer's {prev_shape[1]}x{prev_shape[2]} "
                                    "input")
            c_out = w.shape[0] if w is not None else prev_shape[0]
            cg = w.shape[1] if w is not None else 1
            # conv2d_coo builds index arrays over every output x kernel tap x input channel.
            require(float(c_out) * cg * kh * kw * ho * wo * 48,
                    f"lowering this {ltype} layer to synapses", where=r.where(f"layer/{k}"),
                    fix="check the layer's geometry")
            if w is None:
                w = np.zeros((c_out, 1, kh, kw), dtype=np.int64) + pw
            rows, cols, vals, out_shape = conv2d_coo(prev_shape, w, stride, padding, dilation,
                                                     groups)
            # Odd weights do not sit on the mixed 8-bit grid (step 2): store 2w with one less
            # exponent, which gives the same integer sum.
            if np.any(vals % 2) and wexp > -8:
                vals, wexp = vals * 2, wexp - 1
            sign = "mixed"
            legal = _legal(vals, 8, sign)
            if not np.array_equal(legal, vals):
                raise FrontendError(f"{r.where(f'layer/{k}/weight')}: weights "
                                    f"[{vals.min()}, {vals.max()}] do not fit 8-bit synapses")
            b.add(LoihiSparse(
                name=conn, in_features=n_prev, out_features=math.prod(out_shape),
                rows=b.const(f"{conn}.rows", rows), cols=b.const(f"{conn}.cols", cols),
                values=b.const(f"{conn}.values", vals), weight_exp=wexp, num_weight_bits=8,
                sign_mode=sign), prev)
        size = math.prod(out_shape)
        bias = None
        if "bias" in layer:
            bias = np.trunc(r.array(layer, "bias").astype(np.float64)).astype(np.int64)
            per_channel = bias.reshape(-1)
            if len(out_shape) == 3 and per_channel.size == out_shape[0]:
                bias = np.repeat(per_channel, out_shape[1] * out_shape[2])
            if bias.size not in (1, size):
                raise FrontendError(f"{r.where(f'layer/{k}/bias')}: {bias.size} values, expected "
                                    f"1, {size} (one per neuron) or one per channel")
            bias = np.broadcast_to(bias.reshape(-1), (size,))
        b.add(LoihiCompartment(name=pop, shape=(size,),
                               bias_mant=_param(b, pop, bias) if bias is not None else 0, **params),
              conn)
        shapes[pop] = list(out_shape)
        prev, prev_shape = pop, tuple(out_shape)
    if prev is None or prev == "x":
        raise FrontendError(f"{r.path.name}: no layers")
    b.add(Output(name="out", shape=(math.prod(prev_shape),)), prev)
    b.attrs["layer_shapes"] = shapes
    g = b.build()
    from ir.verify import verify

    verify(g)
    return g


def _param(b: GraphBuilder, pop: str, values: np.ndarray) -> int:
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and np.all(v == v[0]):
        return int(v[0])
    return b.const(f"{pop}.bias_mant", v)
