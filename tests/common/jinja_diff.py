#!/usr/bin/env python3
"""Differential check of the C++ Jinja interpreter against Python Jinja2.

Reads JSON lines {"template": str, "context": object} on stdin, renders each
with build/tests/common/jinja_render_tool and with Python Jinja2 configured as
transformers configures chat templates (see jinja_constructs_test_gen.py), and
prints every case where they disagree: different text, or one failing and the
other not. Exit status 1 when any case differs. Usage:
    python3 tests/common/jinja_diff.py [path/to/jinja_render_tool] < cases.jsonl
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_constructs_test_gen import env  # noqa: E402  (the transformers-configured environment)


def main():
    tool = sys.argv[1] if len(sys.argv) > 1 else "build/tests/common/jinja_render_tool"
    cases = [json.loads(line) for line in sys.stdin if line.strip()]
    stdin = "".join(json.dumps(c) + "\n" for c in cases)
    run = subprocess.run([tool], input=stdin, capture_output=True, text=True, check=True)
    ours = [json.loads(line) for line in run.stdout.splitlines()]
    differ = 0
    for case, got in zip(cases, ours):
        try:
            want = {"rendered": env.from_string(case["template"]).render(**case.get("context", {}))}
        except Exception as e:  # the template's own error: compare "both failed"
            want = {"error": f"{type(e).__name__}: {e}"}
        if want == got or ("error" in want and "error" in got):
            continue
        differ += 1
        print("DIFF", json.dumps(case)[:300])
        print("  python:", json.dumps(want)[:500])
        print("  tessera:", json.dumps(got)[:500])
    print(f"{len(cases) - differ}/{len(cases)} agree")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
