#!/usr/bin/env python3
"""Starlight's monitoring entry point, with its flag names: a thin wrapper over `stegwatch monitor`.

    python scripts/monitor_performance.py --model_version v4 --dataset_path build/default-corpus
"""

import sys

from stegwatch.cli import app

if __name__ == "__main__":
    arguments = [arg.replace("--model_version", "--model-version").replace("--dataset_path", "--dataset-path")
                 .replace("--fail_on", "--fail-on") for arg in sys.argv[1:]]
    sys.exit(app(["monitor", *arguments]))
