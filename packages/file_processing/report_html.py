"""The profile as a self-contained HTML page (no scripts, no external assets).

Every value from the data goes through Jinja's autoescaping, so a column named ``<script>`` or a
top value holding markup is shown as text, never interpreted by the browser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_profile_html"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Profile of {{ p.dataset }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { color: #a40000; font-weight: 600; }
code { background: #f6f6f6; padding: 0 0.2rem; }
</style>
</head>
<body>
<h1>Profile of <code>{{ p.dataset }}</code></h1>
<p>Source <code>{{ p.source }}</code> ({{ p.format }}, {{ p.files }} file{{ "s" if p.files != 1 }}):
{{ "{:,}".format(p.rows) }} rows, {{ p.column_count }} columns. Generated {{ p.generated_at }}.</p>
<h2>Columns</h2>
<table>
<tr><th>column</th><th>type</th><th>nulls</th><th>distinct</th><th>min</th><th>max</th><th>mean</th></tr>
{% for c in p.columns %}
<tr>
<td><a href="#col-{{ loop.index }}"><code>{{ c.name }}</code></a></td>
<td>{{ c.type }}</td>
<td class="num{{ ' warn' if c.null_ratio > 0.05 }}">{{ c.nulls }} ({{ "%.2f"|format(c.null_ratio * 100) }}%)</td>
<td class="num">{{ c.distinct if c.distinct is defined else "" }}</td>
<td>{{ c.min if c.min is defined else "" }}</td>
<td>{{ c.max if c.max is defined else "" }}</td>
<td class="num">{{ "%.4g"|format(c.mean) if c.mean is defined and c.mean is not none else "" }}</td>
</tr>
{% endfor %}
</table>
{% for c in p.columns %}
<h3 id="col-{{ loop.index }}"><code>{{ c.name }}</code> <small>{{ c.type }} ({{ c.kind }})</small></h3>
<table>
{% for key in ["count", "nulls", "distinct", "min", "max", "mean", "stddev", "zeros", "negatives", "nan", "empty", "true", "false"] %}
{% if c[key] is defined %}<tr><th>{{ key }}</th><td>{{ c[key] }}</td></tr>{% endif %}
{% endfor %}
{% if c.length is defined %}<tr><th>length</th><td>min {{ c.length.min }}, max {{ c.length.max }}, mean {{ "%.1f"|format(c.length.mean or 0) }}</td></tr>{% endif %}
{% if c.quantiles %}<tr><th>quantiles</th><td>{% for q, v in c.quantiles.items() %}{{ q }}: {{ v }}{{ ", " if not loop.last }}{% endfor %}</td></tr>{% endif %}
</table>
{% if c.top_values %}
<table>
<tr><th>top value</th><th>count</th></tr>
{% for t in c.top_values %}<tr><td><code>{{ t.value }}</code></td><td class="num">{{ t.count }}</td></tr>{% endfor %}
</table>
{% endif %}
{% endfor %}
</body>
</html>
"""


def render_profile_html(profile: dict[str, Any]) -> str:
    """The HTML report of a profile document; every data value is HTML-escaped."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(p=profile)
