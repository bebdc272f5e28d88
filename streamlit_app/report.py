"""The performance report as one HTML file: metrics, the per strategy/symbol table and the page's
plotly charts (plotly.js inlined once, so the file opens offline)."""

from __future__ import annotations

import html

import pandas as pd


def html_report(title: str, subtitle: str, metrics: list[tuple[str, str]], table: pd.DataFrame | None,
                figures: list) -> bytes:
    def rows(items):
        return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in items)

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
             f"<table class='metrics'>{rows(metrics)}</table>"]
    if table is not None and len(table):
        parts.append("<h2>Per strategy and symbol</h2>" + table.to_html(index=False, classes="groups"))
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    parts.append("</body></html>")
    return "".join(parts).encode("utf-8")
