"""Small hand-written SVG and HTML helpers for the compile report: heatmaps, bar charts, tables.

No dependency beyond numpy: the report must open offline in any browser, so every figure is
inline SVG text. Hover text uses SVG ``<title>`` elements (tooltips without JavaScript). Numbers
are printed with a fixed precision, so the same data gives the same bytes.

Colour scale: a white-to-dark-red sequential ramp (the anchor colours of ColorBrewer's "OrRd"
scheme, Brewer and Harrower, colorbrewer2.org), chosen because an empty core should look empty;
values above the scale's top (over a limit) are drawn in a separate violet so they stand out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np

# ColorBrewer OrRd anchors, light to dark (data, see the module doc).
_RAMP = ["#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f",
         "#b30000", "#7f0000"]
EMPTY = "#e4e6ea"
"""Fill of a mesh slot with no core."""
OVER = "#7b3294"
"""Fill of a value above the scale (e.g. over a hardware limit)."""
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def colour(frac: float) -> str:
    """The ramp colour of ``frac`` in [0, 1] (linear between anchors); > 1 gives :data:`OVER`,
    NaN gives :data:`EMPTY`."""
    if frac is None or (isinstance(frac, float) and math.isnan(frac)):
        return EMPTY
    if frac > 1.0 + 1e-12:
        return OVER
    f = min(max(float(frac), 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(f), len(_RAMP) - 2)
    t = f - i
    a, b = _hex(_RAMP[i]), _hex(_RAMP[i + 1])
    r, g, bl = (round(a[k] + (b[k] - a[k]) * t) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (relative luminance)."""
    r, g, b = _hex(fill)
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000" if lum > 140 else "#fff"


def fmt_num(v: Any, digits: int = 4) -> str:
    """A compact number: integers as is, floats with ``digits`` significant digits."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if not math.isfinite(f):
            return str(f)
        if f == 0:
            return "0"
        if f == int(f) and abs(f) < 1e15:
            return str(int(f))
        return f"{f:.{digits}g}"
    return str(v)


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """A number with an SI prefix: ``si(1.2e-6, 'J') == '1.2 uJ'``."""
    if value is None:
        return "-"
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{fmt_num(v)} {unit}"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                           (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(v) >= factor * (1 - 1e-12):
            return f"{v / factor:.{digits}g} {prefix}{unit}"
    return f"{v:.{digits}g} {unit}"


def _f(x: float) -> str:
    """Coordinates with at most one decimal (stable text)."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
            f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" aria-label="{escape(label)}" '
            f'style="{FONT};font-size:12px">' + "".join(body) + "</svg>")


def _min_width(title: str, unit: str) -> float:
    """Room for the title (bold 12 px: about 7 px a character) and the legend."""
    return max(34 + 7.2 * len(title) + 10, 34 + 10 * 18 + 40 + 6.5 * len(unit))


def _legend(x: float, y: float, vmax: float, unit: str, over: bool, steps: int = 10,
            w: float = 18.0, h: float = 12.0) -> list[str]:
    """A discrete colour legend: ``steps`` swatches from 0 to ``vmax`` (and 'over' if used)."""
    out = []
    for k in range(steps):
        out.append(f'<rect x="{_f(x + k * w)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
                   f'fill="{colour((k + 0.5) / steps)}"/>')
    out.append(f'<text x="{_f(x)}" y="{_f(y + h + 13)}">0</text>')
    out.append(f'<text x="{_f(x + steps * w)}" y="{_f(y + h + 13)}" text-anchor="end">'
               f'{escape(fmt_num(vmax, 3))}{escape(unit)}</text>')
    if over:
        ox = x + steps * w + 12
        out.append(f'<rect x="{_f(ox)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
                   f'fill="{OVER}"/>')
        out.append(f'<text x="{_f(ox + w + 4)}" y="{_f(y + h - 1)}">over</text>')
    return out


def heatmap(values: np.ndarray, *, title: str = "", vmax: float | None = None, unit: str = "",
            tooltips: Sequence[Sequence[str | None]] | None = None,
            labels: Sequence[Sequence[str | None]] | None = None, group_x: int | None = None,
            max_width: float = 880.0, y_up: bool = True) -> str:
    """An SVG heatmap of a 2-D array ``values[y, x]`` (NaN: an empty cell, drawn grey).

    ``vmax``: the value drawn darkest (default the maximum; values above it are 'over');
    ``tooltips``/``labels``: per-cell hover text and in-cell text (shown when cells are big
    enough); ``group_x``: draw a heavier line every ``group_x`` columns (chip edges);
    ``y_up``: row 0 at the bottom (the mesh's north is up).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"heatmap: values must be 2-D, got shape {list(v.shape)}")
    H, W = v.shape
    finite = v[np.isfinite(v)]
    top = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    top = top if top > 0 else 1.0
    cell = max(4.0, min(44.0, (max_width - 60) / max(W, 1)))
    left, head = 34.0, (24.0 if title else 6.0)
    width = max(left + W * cell + 10, _min_width(title, unit))
    height = head + H * cell + 22 + 34
    body = []
    if title:
        body.append(f'<text x="{_f(left)}" y="16" font-weight="600">{escape(title)}</text>')
    show_labels = labels is not None and cell >= 26
    over = False
    for y in range(H):
        row = (H - 1 - y) if y_up else y
        py = head + row * cell
        for x in range(W):
            val = v[y, x]
            frac = val / top if math.isfinite(val) else float("nan")
            over |= bool(math.isfinite(val) and frac > 1 + 1e-12)
            fill = colour(frac)
            tip = tooltips[y][x] if tooltips is not None else None
            if tip is None and math.isfinite(val):
                tip = f"({x}, {y}): {fmt_num(val)}{unit}"
            rect = (f'<rect x="{_f(left + x * cell)}" y="{_f(py)}" width="{_f(cell)}" '
                    f'height="{_f(cell)}" fill="{fill}" stroke="#fff" stroke-width="0.5">')
            body.append(rect + (f"<title>{escape(tip)}</title>" if tip else "") + "</rect>")
            if show_labels and labels[y][x]:
                body.append(f'<text x="{_f(left + (x + 0.5) * cell)}" y="{_f(py + cell / 2 + 4)}"'
                            f' text-anchor="middle" font-size="10" fill="{text_colour(fill)}">'
                            f"{escape(labels[y][x])}</text>")
    if group_x and group_x < W:
        for gx in range(group_x, W, group_x):
            lx = left + gx * cell
            body.append(f'<line x1="{_f(lx)}" y1="{_f(head)}" x2="{_f(lx)}" '
                        f'y2="{_f(head + H * cell)}" stroke="#333" stroke-width="2"/>')
    # Axis ticks: every column/row when they fit, else every 4th.
    step = 1 if cell >= 14 else (4 if cell >= 5 else 8)
    for x in range(0, W, step):
        body.append(f'<text x="{_f(left + (x + 0.5) * cell)}" y="{_f(head + H * cell + 12)}" '
                    f'text-anchor="middle" font-size="9" fill="#555">{x}</text>')
    for y in range(0, H, step):
        row = (H - 1 - y) if y_up else y
        body.append(f'<text x="{_f(left - 4)}" y="{_f(head + (row + 0.5) * cell + 3)}" '
                    f'text-anchor="end" font-size="9" fill="#555">{y}</text>')
    body += _legend(left, head + H * cell + 20, top, unit, over)
    return _svg(width, height, body, title or "heatmap")


def link_map(east: np.ndarray, west: np.ndarray, north: np.ndarray, south: np.ndarray, *,
             used: np.ndarray | None = None, title: str = "", unit: str = " packets/tick",
             group_x: int | None = None, max_width: float = 880.0) -> str:
    """The mesh with every directed link drawn as a lane coloured by its load.

    Arrays as returned by ``nmc.passes.route.link_loads`` on the global ``W x H`` grid:
    ``east``/``west`` ``(H, W-1)`` (link between ``(x, y)`` and ``(x+1, y)``), ``north``/``south``
    ``(H-1, W)`` (link between ``(x, y)`` and ``(x, y+1)``). ``used[y, x]`` marks slots holding a
    core (drawn darker). East and north lanes sit above/left of their west and south twins.
    Links with zero load are not drawn.
    """
    east, west = np.asarray(east, float), np.asarray(west, float)
    north, south = np.asarray(north, float), np.asarray(south, float)
    if east.ndim != 2 or north.ndim != 2:
        raise ValueError("link_map: east/west/north/south must be 2-D arrays (see link_loads)")
    H, W = east.shape[0], north.shape[1]
    loads = [a for a in (east, west, north, south) if a.size]
    top = max((float(a.max()) for a in loads), default=0.0)
    top = top if top > 0 else 1.0
    pitch = max(8.0, min(48.0, (max_width - 60) / max(W, 1)))
    core = pitch * 0.5
    lane = core * 0.36  # thickness of one direction's lane
    left, head = 34.0, (24.0 if title else 6.0)
    width = max(left + W * pitch + 10, _min_width(title, unit))
    height = head + H * pitch + 22 + 34
    body = []
    if title:
        body.append(f'<text x="{_f(left)}" y="16" font-weight="600">{escape(title)}</text>')

    def cx(x: float) -> float:
        return left + (x + 0.5) * pitch

    def cy(y: float) -> float:
        return head + (H - 1 - y + 0.5) * pitch

    for y in range(H):
        for x in range(W):
            on = used is None or bool(used[y, x])
            body.append(f'<rect x="{_f(cx(x) - core / 2)}" y="{_f(cy(y) - core / 2)}" '
                        f'width="{_f(core)}" height="{_f(core)}" rx="2" '
                        f'fill="{"#9aa3ad" if on else EMPTY}"><title>core slot ({x}, {y})'
                        f'{"" if on else " (empty)"}</title></rect>')
    gap = pitch - core

    def lane_rect(x0: float, y0: float, w: float, h: float, val: float, tip: str) -> str:
        return (f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(w)}" height="{_f(h)}" '
                f'fill="{colour(val / top)}" stroke="#555" stroke-width="0.3">'
                f"<title>{escape(tip)}: {escape(fmt_num(val))}{escape(unit)}</title></rect>")

    for name, arr in (("east", east), ("west", west)):
        if not arr.size:
            continue
        ys, xs = np.nonzero(arr)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            x0 = cx(x) + core / 2
            off = -lane if name == "east" else 0.0
            frm, to = ((x, y), (x + 1, y)) if name == "east" else ((x + 1, y), (x, y))
            body.append(lane_rect(x0, cy(y) + off, gap, lane, float(arr[y, x]),
                                  f"{frm} -> {to} ({name})"))
    for name, arr in (("north", north), ("south", south)):
        if not arr.size:
            continue
        ys, xs = np.nonzero(arr)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            y0 = cy(y + 1) + core / 2
            off = -lane if name == "north" else 0.0
            frm, to = ((x, y), (x, y + 1)) if name == "north" else ((x, y + 1), (x, y))
            body.append(lane_rect(cx(x) + off, y0, lane, gap, float(arr[y, x]),
                                  f"{frm} -> {to} ({name})"))
    if group_x and group_x < W:
        for gx in range(group_x, W, group_x):
            lx = left + gx * pitch
            body.append(f'<line x1="{_f(lx)}" y1="{_f(head)}" x2="{_f(lx)}" '
                        f'y2="{_f(head + H * pitch)}" stroke="#333" stroke-width="1.5" '
                        f'stroke-dasharray="4 3"/>')
    step = 1 if pitch >= 14 else 4
    for x in range(0, W, step):
        body.append(f'<text x="{_f(cx(x))}" y="{_f(head + H * pitch + 12)}" text-anchor="middle" '
                    f'font-size="9" fill="#555">{x}</text>')
    for y in range(0, H, step):
        body.append(f'<text x="{_f(left - 4)}" y="{_f(cy(y) + 3)}" text-anchor="end" '
                    f'font-size="9" fill="#555">{y}</text>')
    body += _legend(left, head + H * pitch + 20, top, unit, False)
    return _svg(width, height, body, title or "link loads")


def bar_chart(items: Sequence[tuple[str, float]], *, title: str = "", unit: str = "",
              value_text: Sequence[str] | None = None, width: float = 640.0,
              bar_height: float = 18.0, colour_: str = "#c8553d") -> str:
    """A horizontal bar chart of ``(label, value)`` pairs (values >= 0), labels on the left and
    the value (or ``value_text[i]``) at the end of each bar."""
    n = len(items)
    label_w = min(240.0, 12.0 + 6.8 * max((len(str(k)) for k, _ in items), default=4))
    value_w = 110.0
    head = 24.0 if title else 6.0
    height = head + n * (bar_height + 6) + 8
    top = max((float(v) for _, v in items), default=0.0)
    top = top if top > 0 else 1.0
    span = max(40.0, width - label_w - value_w)
    body = []
    if title:
        body.append(f'<text x="4" y="16" font-weight="600">{escape(title)}</text>')
    for i, (label, val) in enumerate(items):
        y = head + i * (bar_height + 6)
        w = span * max(float(val), 0.0) / top
        txt = value_text[i] if value_text is not None else f"{fmt_num(val)}{unit}"
        body.append(f'<text x="{_f(label_w - 6)}" y="{_f(y + bar_height / 2 + 4)}" '
                    f'text-anchor="end">{escape(str(label))}</text>')
        body.append(f'<rect x="{_f(label_w)}" y="{_f(y)}" width="{_f(max(w, 0.5))}" '
                    f'height="{_f(bar_height)}" fill="{colour_}"><title>{escape(str(label))}: '
                    f"{escape(txt)}</title></rect>")
        body.append(f'<text x="{_f(label_w + w + 5)}" y="{_f(y + bar_height / 2 + 4)}" '
                    f'fill="#333">{escape(txt)}</text>')
    return _svg(width, height, body, title or "bar chart")


def table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]], *, caption: str = "",
          numeric: Sequence[bool] | None = None, row_keys: Sequence[str] | None = None,
          raw: Sequence[Sequence[Any]] | None = None, cls: str = "") -> str:
    """An HTML table (no header row when ``header`` is None). Cells are escaped text (numbers through :func:`fmt_num`).

    ``numeric[j]``: right-align column ``j`` (default: guessed from the first row);
    ``row_keys[i]``: a ``data-key`` on row ``i``; ``raw[i][j]``: the exact value of a cell,
    written as its ``data-value`` attribute so that tools and tests can read the numbers back
    (``repr`` of a float round-trips).
    """
    if numeric is None:
        first = rows[0] if rows else []
        numeric = [isinstance(c, int | float | np.integer | np.floating)
                   and not isinstance(c, bool) for c in first] + [False] * len(header or ())
    out = [f'<table{f" class={chr(34)}{escape(cls)}{chr(34)}" if cls else ""}>']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    if header is not None:
        out.append("<thead><tr>" + "".join(
            f'<th{" class=num" if j < len(numeric) and numeric[j] else ""}>{escape(str(h))}</th>'
            for j, h in enumerate(header)) + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(rows):
        key = f' data-key="{escape(str(row_keys[i]))}"' if row_keys is not None else ""
        cells = []
        for j, c in enumerate(row):
            attr = " class=num" if j < len(numeric) and numeric[j] else ""
            if raw is not None and raw[i][j] is not None:
                attr += f' data-value="{escape(_raw(raw[i][j]))}"'
            text = c if isinstance(c, str) else fmt_num(c)
            cells.append(f"<td{attr}>{escape(text)}</td>")
        out.append(f"<tr{key}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _raw(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return repr(float(v))
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


__all__ = ["EMPTY", "OVER", "bar_chart", "colour", "fmt_num", "heatmap", "link_map", "si",
           "table", "text_colour"]
