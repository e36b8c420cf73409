"""`python -m hello.jobs.greet --name N`: prints a greeting and the facts an image test checks."""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hello.jobs.greet", description="Greets, as a job would.")
    parser.add_argument("--name", required=True, help="who to greet")
    args = parser.parse_args(argv)
    facts = {
        "greeting": f"hello {args.name}",
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "yaml": yaml.safe_load("a: 1")["a"],
        "python": sys.version.split()[0],
    }
    print(json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
