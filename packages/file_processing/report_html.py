"""The profile and the data-quality results as self-contained HTML pages (no scripts, no assets).

Every value from the data goes through Jinja's autoescaping, so a column named ``<script>`` or a
top value holding markup is shown as text, never interpreted by the browser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_dq_html", "render_profile_html"]

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


_STYLE = _TEMPLATE[_TEMPLATE.index("<style>") : _TEMPLATE.index("</style>") + len("</style>")]

_DQ_TEMPLATE = (
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Data quality of {{ d.dataset }}: {{ "passed" if d.success else "FAILED" }}</title>
"""
    + _STYLE
    + """
<style>
.ok { color: #1a6b1a; font-weight: 600; }
td.result { white-space: nowrap; }
</style>
</head>
<body>
<h1>Data quality of <code>{{ d.dataset }}</code>:
{% if d.success %}<span class="ok">passed</span>{% else %}<span class="warn">FAILED</span>{% endif %}</h1>
<p>Source <code>{{ d.source }}</code>, {{ "{:,}".format(d.rows) }} rows; suite <code>{{ d.suite }}</code>.
{{ d.statistics.evaluated }} expectations: {{ d.statistics.passed }} passed,
{{ d.statistics.failed_critical }} critical failed, {{ d.statistics.failed_warning }} warnings,
{{ d.statistics.errors }} errors (great_expectations {{ d.run.great_expectations_version }},
{{ d.run.seconds }} s).</p>
<table>
<tr><th>expectation</th><th>severity</th><th>result</th><th>unexpected</th><th>arguments</th><th>sample of unexpected values</th></tr>
{% for r in d.results %}
<tr>
<td><code>{{ r.id }}</code></td>
<td>{{ "critical" if r.critical else "warning" }}</td>
<td class="result">{% if r.error %}<span class="warn">error</span>{% elif r.success %}<span class="ok">passed</span>{% else %}<span class="warn">failed</span>{% endif %}</td>
<td class="num">{% if r.result.unexpected_count is not none and r.result.unexpected_count is defined %}{{ r.result.unexpected_count }}{% if r.result.unexpected_percent is not none and r.result.unexpected_percent is defined %} ({{ "%.3g"|format(r.result.unexpected_percent) }}%){% endif %}{% elif r.result.observed_value is defined %}observed {{ r.result.observed_value }}{% endif %}</td>
<td><code>{{ r.kwargs | tojson }}</code></td>
<td>{% if r.error %}{{ r.error }}{% else %}{% for v in (r.result.partial_unexpected_list or [])[:10] %}<code>{{ v }}</code>{{ ", " if not loop.last }}{% endfor %}{% endif %}</td>
</tr>
{% endfor %}
</table>
</body>
</html>
"""
)


def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True
    )


def render_profile_html(profile: dict[str, Any]) -> str:
    """The HTML report of a profile document; every data value is HTML-escaped."""
    return _env().from_string(_TEMPLATE).render(p=profile)


def render_dq_html(results: dict[str, Any]) -> str:
    """The HTML report of a validation results document (``_dq_<dataset>.json``); values escaped."""
    return _env().from_string(_DQ_TEMPLATE).render(d=results)
