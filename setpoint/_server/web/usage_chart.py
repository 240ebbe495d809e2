"""The usage chart as SVG geometry (rendered by ``templates/_usage_chart.html``): stacked bars of resolutions per
label per time bucket, and the configured rollout beside the observed split. No JavaScript, no build step."""

from __future__ import annotations

from dataclasses import dataclass

from setpoint._server.services.usage.report import CODE_DEFAULT, UsageSeries

PALETTE = ("#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#7c3aed", "#0d9488", "#ea580c")
DEFAULT_COLOR = "#9ca3af"
WIDTH = 720
HEIGHT = 180
LEFT = 48
BOTTOM = 22


@dataclass(frozen=True)
class Rect:
    """One bar segment."""

    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Tick:
    """An axis label."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Share:
    """One label's configured and observed share."""

    label: str
    color: str
    configured: float | None
    observed: float | None


@dataclass(frozen=True)
class Chart:
    """Everything the template draws."""

    width: int
    height: int
    rects: list[Rect]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[tuple[str, str]]
    shares: list[Share]
    peak: int


def color_map(names: list[str]) -> dict[str, str]:
    """A stable colour per series name (the code default is grey)."""
    colors: dict[str, str] = {}
    for name in names:
        if name == CODE_DEFAULT:
            colors[name] = DEFAULT_COLOR
        elif name not in colors:
            colors[name] = PALETTE[len([n for n in colors if n != CODE_DEFAULT]) % len(PALETTE)]
    return colors


def build_chart(series: UsageSeries, rollout: dict[str, float]) -> Chart:
    """The chart of ``series``, with ``rollout`` (label -> weight) as the configured split."""
    configured_labels = [label for label, weight in rollout.items() if weight > 0]
    remainder = max(0.0, 1.0 - sum(rollout.values()))
    names = list(dict.fromkeys([*configured_labels, *series.labels]))
    if remainder > 1e-9 and CODE_DEFAULT not in names:
        names.append(CODE_DEFAULT)
    colors = color_map(names)
    count = max(1, len(series.buckets))
    plot_width = WIDTH - LEFT - 8
    plot_height = HEIGHT - BOTTOM - 8
    step = plot_width / count
    per_bucket = [sum(series.counts[n][i] for n in series.labels) for i in range(len(series.buckets))]
    peak = max(per_bucket, default=0)
    scale = plot_height / peak if peak else 0.0
    rects: list[Rect] = []
    for i, bucket in enumerate(series.buckets):
        y = float(HEIGHT - BOTTOM)
        when = bucket.strftime("%Y-%m-%d %H:00 UTC" if series.step == "hour" else "%Y-%m-%d")
        for name in series.labels:
            value = series.counts[name][i]
            if not value:
                continue
            height = value * scale
            y -= height
            rects.append(
                Rect(LEFT + i * step + 0.5, y, max(step - 1.0, 0.5), height, colors[name], f"{when}: {name} {value:,}")
            )
    y_ticks = [Tick(LEFT - 6, HEIGHT - BOTTOM - f * plot_height, f"{round(peak * f):,}") for f in (0, 0.5, 1)]
    every = max(1, count // 6)
    fmt = "%H:00" if series.step == "hour" else "%m-%d"
    x_ticks = [
        Tick(LEFT + i * step + step / 2, HEIGHT - 6, b.strftime(fmt))
        for i, b in enumerate(series.buckets)
        if i % every == 0
    ]
    observed = series.split()
    shares = [
        Share(
            name,
            colors[name],
            (remainder if name == CODE_DEFAULT else rollout.get(name)) if rollout or remainder else None,
            observed.get(name),
        )
        for name in names
    ]
    return Chart(WIDTH, HEIGHT, rects, y_ticks, x_ticks, [(n, colors[n]) for n in names], shares, peak)
