"""Build-time check of the Jinja templates that Airflow renders at run time (arguments, env)."""

from __future__ import annotations

import jinja2
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["check_template"]

# Airflow renders operator template fields with a sandboxed Jinja environment; parsing with the
# same kind of environment catches syntax errors here instead of in a running task.
_ENV = SandboxedEnvironment()


def check_template(text: str) -> None:
    """Raise ValueError naming the problem when ``text`` is not valid Jinja syntax."""
    if "{" not in text:
        return
    try:
        _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"{text!r} is not a valid Jinja template: {exc.message}") from None
