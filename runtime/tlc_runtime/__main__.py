"""Command line: ``python -m tlc_runtime check BUNDLE [--key PUB]`` and ``python -m tlc_runtime info BUNDLE``.

Exit codes: 0 pass / intact, 1 golden check failed / files not intact, 2 error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import TlcRuntimeError

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlc_runtime",
                                     description="Verify and inspect tlc bundles (no PyTorch needed).")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="run the bundle's golden self-check on this device")
    check.add_argument("bundle", help="bundle directory")
    check.add_argument("--backend", default="auto", help="onnxruntime, openvino, tensorrt (default: auto)")
    check.add_argument("--device", default="auto", help="e.g. cpu, cuda (default: auto)")
    check.add_argument("--artifact", default=None, help="artifact name (default: the manifest's default)")
    check.add_argument("--cache-dir", default=None, help="engine cache directory (TensorRT/OpenVINO)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--key", action="append", default=None, metavar="PUB",
                       help="trusted Ed25519 public key (PEM; repeatable): refuse the bundle unless one of "
                            "them signed it (needs tlc-runtime[signing])")
    info = sub.add_parser("info", help="show the manifest summary and every file's integrity status")
    info.add_argument("bundle", help="bundle directory")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def run_check(args: argparse.Namespace) -> int:
    from .loader import load

    clf = load(args.bundle, backend=args.backend, device=args.device, artifact=args.artifact,
               cache_dir=args.cache_dir, trusted_keys=args.key)
    report = clf.check()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return EXIT_OK if report.passed else EXIT_FAIL


def run_info(args: argparse.Namespace) -> int:
    from .info import bundle_summary, format_summary

    summary = bundle_summary(args.bundle)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return EXIT_OK if summary["intact"] else EXIT_FAIL


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_check(args) if args.command == "check" else run_info(args)
    except TlcRuntimeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except Exception as exc:  # never a traceback for the user; say what broke
        print(f"Error: internal error ({type(exc).__name__}: {exc}); please report it", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
