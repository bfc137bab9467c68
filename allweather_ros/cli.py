"""The `allweather` command: one entry point, one subcommand per job."""
from __future__ import annotations

import argparse
import json
import sys


def _info(args: argparse.Namespace) -> int:
    from .model import build_model
    from .model.profile import parse_size, profile

    model = build_model(args.config)
    width, height = parse_size(args.size)
    report = {"config": args.config, "model": model.config, **profile(model, width, height)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"config      {args.config}")
    for key, value in model.config.items():
        print(f"  {key:<14}{value}")
    print(f"parameters  {report['params']:,}")
    print(f"GFLOP/frame {report['gflops']:.3f} at {report['size']} (2 x multiply-adds)")
    print(f"experts     {report['experts_gflops']:.3f} GFLOP, "
          f"{100 * report['experts_share']:.1f}% of the frame")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allweather",
        description="Language-driven all-in-one adverse weather removal for ROS 2 cameras.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="model configuration, parameters and GFLOP per frame")
    info.add_argument("--config", default="rt", help="variant (rt, base) or a YAML model file")
    info.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"allweather {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
