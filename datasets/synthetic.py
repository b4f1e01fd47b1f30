"""``python -m reproduce synthetic NAME OUT_DIR [--preset smoke|demo] [--<parameter> VALUE ...]`` (also
``python -m mwam_harness.datasets.synthetic ...``).

Writes the synthetic stand-in of a registered data set in the exact on-disk layout of the real one (each data set's
generator: ``datasets/<name>/synthetic.py``, documented in docs/datasets.md). The generator's keyword parameters
become options; ``--preset`` starts from a preset's sizes. A directory that already holds the same set is reused.
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

from mwam_harness.datasets.registry import dataset_spec, list_datasets, load_object

#: Short names accepted on the command line.
ALIASES = {"surf": "casia_surf"}


def _parameters(target: str) -> dict[str, object]:
    """The generator's keyword parameters with their defaults (``progress`` excluded)."""
    signature = inspect.signature(load_object(target))
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty and name != "progress"
    }


def _integers(text: str) -> tuple[int, ...]:
    """``48,48,40`` -> (48, 48, 40)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def main(argv: list[str] | None = None, prog: str = "python -m mwam_harness.datasets.synthetic") -> int:
    names = list_datasets()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write the synthetic stand-in of a registered data set in the exact layout of the real one.",
    )
    kinds = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name in names:
        spec = dataset_spec(name)
        aliases = [a for a, target in ALIASES.items() if target == name]
        sub = kinds.add_parser(name, aliases=aliases, help=f"synthetic {spec.title}")
        sub.add_argument("out_dir", type=Path)
        sub.add_argument("--preset", choices=[p for p in spec.presets if spec.presets[p].synthetic], default=None)
        for parameter, default in _parameters(spec.generator).items():
            kind = type(default) if isinstance(default, int | float | str) else str
            if isinstance(default, tuple):  # e.g. a volume shape: --shape 48,48,40
                kind = _integers
            sub.add_argument(f"--{parameter.replace('_', '-')}", dest=parameter, type=kind, default=None,
                             help=f"default {default!r}")  # fmt: skip
    args = parser.parse_args(argv)
    spec = dataset_spec(ALIASES.get(args.name, args.name))
    arguments = dict(spec.preset(args.preset).generator) if args.preset else {}
    for parameter in _parameters(spec.generator):
        if getattr(args, parameter) is not None:
            arguments[parameter] = getattr(args, parameter)
    start = time.perf_counter()
    try:
        out = spec.write_synthetic(args.out_dir, **arguments, progress=True)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - start
    print(f"synthetic {spec.title} (synthetic data, not the real set) at {out} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
