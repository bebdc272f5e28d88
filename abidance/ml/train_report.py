"""Charts of a training run, from the JSON-ready `charts` dict it keeps in the model registry.

The same functions draw `abidance train --report FILE.html` and the dashboard's ML page, so
both show the same thing. Keys of `charts` (each optional):

  cv_folds        {"fold", "auc", "hit_rate", "log_loss", "test_rows"}: purged CV, per fold
  learning_curve  {"train_rows", "train_auc", "holdout_auc"}: sklearn models refitted on more history
  episodes        {"timesteps", "episode_return"}: RL training episodes
  equity          {strategy: {"ts": [ns], "equity": [float]}}: held-out equity of each strategy
  importances     {"names", "mean", "std", "metric"}: permutation importances, held out
  windows         {"window", "test_start", variant: [return]...}: regime walk-forward windows

Values are floats for drawing only; the exact figures are in the printed tables and metrics.
"""

from __future__ import annotations

import html

import pandas as pd

COLORS = {"model": "#1f77b4", "agent": "#1f77b4", "buy_and_hold": "#7f7f7f", "ema_cross": "#ff7f0e",
          "regime": "#1f77b4", "static": "#ff7f0e"}


def _layout(fig, title: str, height: int = 380):
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig


def cv_folds_figure(folds: dict):
    """Out-of-sample AUC and hit rate of each purged CV fold (0.5 = no skill)."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    x = [f"fold {i}" for i in folds["fold"]]
    fig = go.Figure([go.Bar(x=x, y=folds["auc"], name="AUC"),
                     go.Bar(x=x, y=folds.get("hit_rate") or [None] * len(x), name="hit rate")])
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray")
    fig.update_yaxes(range=[0.3, 0.8])
    return _layout(fig, "Purged cross-validation: score of each test fold")


def learning_curve_figure(curve: dict):
    """AUC in sample and held out against the number of training rows."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=curve["train_rows"], y=curve["train_auc"], name="in-sample AUC",
                                mode="lines+markers"),
                     go.Scatter(x=curve["train_rows"], y=curve["holdout_auc"], name="held-out AUC",
                                mode="lines+markers")])
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray")
    fig.update_xaxes(title_text="training rows (most recent)")
    return _layout(fig, "Learning curve")


def episodes_figure(episodes: dict, smooth: int = 20):
    """RL training: the return of each finished episode, and its rolling mean."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    ret = pd.Series(episodes["episode_return"], dtype=float)
    fig = go.Figure([go.Scatter(x=episodes["timesteps"], y=list(ret), name="episode return", mode="markers",
                                marker=dict(size=4, opacity=0.5)),
                     go.Scatter(x=episodes["timesteps"], y=list(ret.rolling(smooth, min_periods=1).mean()),
                                name=f"rolling mean ({smooth})", mode="lines")])
    fig.update_xaxes(title_text="timesteps")
    return _layout(fig, "Learning curve: training episode returns")


def equity_figure(equity: dict, title: str = "Held-out equity"):
    """Each strategy's equity over the held-out bars."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=pd.to_datetime(c["ts"], unit="ns", utc=True), y=c["equity"], name=name,
                                mode="lines", line=dict(color=COLORS.get(name))) for name, c in equity.items()])
    fig.update_yaxes(title_text="equity (quote asset)")
    return _layout(fig, title, 420)


def importances_figure(imp: dict, top: int = 20):
    """Permutation importances, largest first (error bars: std over the repeats)."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    names, mean, std = imp["names"][:top][::-1], imp["mean"][:top][::-1], imp["std"][:top][::-1]
    fig = go.Figure(go.Bar(x=mean, y=names, orientation="h", error_x=dict(type="data", array=std),
                           name="importance"))
    fig.update_xaxes(title_text=imp.get("metric", "importance"))
    return _layout(fig, "Feature importances (held out)", max(300, 22 * len(names) + 100))


def windows_figure(windows: dict):
    """Regime walk-forward: each variant's return on each test window."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go

    x = [f"w{w}" for w in windows["window"]]
    fig = go.Figure([go.Bar(x=x, y=windows[name], name=name, marker_color=COLORS.get(name))
                     for name in ("regime", "static", "buy_and_hold") if name in windows])
    fig.update_yaxes(title_text="return on the test window", tickformat=".1%")
    return _layout(fig, "Walk-forward: out-of-sample return per window")


# key -> (the list that must be non-empty for a chart, its builder)
_FIGURES = {"learning_curve": ("train_rows", learning_curve_figure), "episodes": ("timesteps", episodes_figure),
            "cv_folds": ("fold", cv_folds_figure), "equity": (None, equity_figure),
            "importances": ("names", importances_figure), "windows": ("window", windows_figure)}


def figures(charts: dict | None) -> list[tuple[str, object]]:
    """(key, plotly figure) for every chart the dict has data for, in a fixed order."""
    out = []
    for key, (required, build) in _FIGURES.items():
        data = (charts or {}).get(key)
        if data and (required is None or data.get(required)):
            out.append((key, build(data)))
    return out


def write_html(path, title: str, subtitle: str, metrics: list[tuple[str, str]], text: str, charts: dict) -> int:
    """One self-contained HTML file (plotly.js inlined once: it opens offline); returns the chart count."""
    figs = figures(charts)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in metrics)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p><table class='metrics'>{rows}</table>",
             f"<pre>{html.escape(text)}</pre>"]
    for i, (key, fig) in enumerate(figs):
        parts.append(f"<div class='chart' id='chart-{key}'>"
                     + fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"plot-{key}") + "</div>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))
    return len(figs)
