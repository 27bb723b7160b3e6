"""Fails when a chart template reads a value that values.yaml does not define.

Helm renders a missing value as empty, and `helm lint --strict` does not turn that into an error (its engine runs
without missingkey=error), so a misspelt `.Values.redirect.autoscalling.enabled` would silently turn a feature
off. This reads every `.Values.a.b.c` path in the templates (and `$c.a.b` where `$c` is one service's values, as
in _workload.tpl) and looks each one up in values.yaml."""

import pathlib
import re
import sys

import yaml

SERVICES = ("idgen", "shortener", "redirect")
VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# `$c := index $root.Values .component` (and in networkpolicy.yaml `index $.Values $component`).
SERVICE_PATH = re.compile(r"\$c((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def defined(values, path):
    node = values
    for key in path:
        if not isinstance(node, dict):
            return True  # below a list or scalar: a template cannot index further by name
        if key not in node:
            return False
        node = node[key]
    return True


def main(chart):
    chart = pathlib.Path(chart)
    values = yaml.safe_load((chart / "values.yaml").read_text())
    missing = []
    for template in sorted((chart / "templates").iterdir()):
        text = template.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{template.name}:{number}"
            for match in VALUES_PATH.finditer(line):
                path = match.group(1).split(".")[1:]
                if not defined(values, path):
                    missing.append(f"{where}: .Values.{'.'.join(path)}")
            for match in SERVICE_PATH.finditer(line):
                path = match.group(1).split(".")[1:]
                for service in SERVICES:
                    if not defined(values[service], path):
                        missing.append(f"{where}: $c.{'.'.join(path)} (not in {service})")
    for reference in missing:
        print(f"undefined value: {reference}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
