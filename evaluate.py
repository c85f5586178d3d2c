"""Evaluate a training run: python evaluate.py --checkpoint DIR --metrics fd_oracle,ls_z,ls_w [--num N]

Appends one JSON line per metric to DIR/metrics-eval.jsonl; metric names: jaxstyle/metrics/evaluate.py.
"""

import sys


def main():
    from jaxstyle.metrics.evaluate import main as evaluate_main
    return evaluate_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
