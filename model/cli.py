"""`mcga`: train, evaluate, benchmark, reconstruct and serve from one command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

DEFAULT_DATA = Path("../shared/data")


def _train_usage(args: argparse.Namespace) -> str | None:
    """Why `mcga train all` cannot run with these arguments (None: it can)."""
    if not (args.data / "cave").is_dir():
        return f"--data {args.data}: no cave/ folder (a shared/data-style folder)"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out} is a file; it names the run folder"
    checks = {
        "--stage1-steps": args.stage1_steps >= 1,
        "--stage2-steps": args.stage2_steps >= 1,
        "--batch": args.batch >= 1,
        "--patch": args.patch >= 16,  # a patch smaller than a source's scenes: checked by the data
        "--synthetic": args.synthetic >= 0,
        "--prune-cameras": args.prune_cameras >= 0,
        "--latent-dim": args.latent_dim >= 1,
        "--tta-tau": args.tta_tau > 0,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        return f"out of range: {', '.join(bad)} (see mcga train all --help)"
    return None


def _train(args: argparse.Namespace) -> int:
    from model.train.pipeline import Recipe, RecipeMismatchError, train_all

    problem = _train_usage(args)
    if problem is not None:
        logging.getLogger("mcga").error("%s", problem)
        return 2
    recipe = Recipe(
        stage1_steps=args.stage1_steps,
        stage2_steps=args.stage2_steps,
        batch=args.batch,
        patch=args.patch,
        synthetic_cubes=args.synthetic,
        prune_cameras=args.prune_cameras,
        stage2_loss=args.stage2_loss,
        latent_dim=args.latent_dim,
        tta_tau=args.tta_tau,
        stage1_loss=args.stage1_loss,
        seed=args.seed,
    )
    try:
        path = train_all(args.data, args.out, args.export, recipe)
    except RecipeMismatchError as exc:
        logging.getLogger("mcga").error("%s", exc)
        return 2
    logging.getLogger("mcga").info("weights written to %s", path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from model.train.compare import CompareBudget, train_compare

    budget = CompareBudget(steps=args.steps, synthetic_cubes=args.synthetic, loss=args.loss)
    train_compare(args.data, args.stage1, args.out, budget, tuple(m.strip() for m in args.models.split(",")))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from model.evaluate_cli import run_eval

    return run_eval(args)


def _bench_model(args: argparse.Namespace) -> int:
    import json

    import torch

    from model.bench import bench_models
    from model.checkpoint import BUNDLED_WEIGHTS, load_checkpoint
    from model.config import GANetConfig
    from model.ganet import GANet
    from model.mstpp import MSTPlusPlus
    from model.runtime import keep_freed_memory

    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = args.weights or (BUNDLED_WEIGHTS if BUNDLED_WEIGHTS.exists() else None)
    ganet = load_checkpoint(weights).model if weights else GANet(GANetConfig())
    result = bench_models({"ganet_s2": ganet, "mstpp": MSTPlusPlus()}, repeats=args.repeats)
    result["ganet_weights"] = str(weights) if weights else "random init (default config)"
    text = json.dumps(result, indent=2)
    if args.json in (None, "-"):
        print(text)
    else:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
        print(text)
    return 0


def _bench_suite(args: argparse.Namespace) -> int:
    from service.bench.suite import run_suite  # the suite drives the service: imported only here

    return run_suite(args)


def _serve(args: argparse.Namespace) -> int:
    try:
        from service.main import serve  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        logging.getLogger("mcga").error(
            "the service is not built yet (issues 4-5): `mcga serve` will start it on embedded defaults"
        )
        return 2
    result: int = serve(args)
    return result


def _reconstruct(args: argparse.Namespace) -> int:
    from service.local import reconstruct_file

    return reconstruct_file(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcga", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train models on real data")
    train_sub = train.add_subparsers(dest="what", required=True)
    t_all = train_sub.add_parser("all", help="stage 1 -> MoC -> stage 2: the bundled-weights recipe")
    from model.config import TTAConfig
    from model.losses import LOSSES
    from model.train.pipeline import Recipe

    loss_names = tuple(LOSSES)

    r = Recipe()
    t_all.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a shared/data-style folder")
    t_all.add_argument(
        "--out", type=Path, default=Path("runs/train"), help="run folder (logs, resumable state)"
    )
    t_all.add_argument("--export", type=Path, default=None, help="also write the final checkpoint here")
    t_all.add_argument("--stage1-steps", type=int, default=r.stage1_steps)
    t_all.add_argument("--stage2-steps", type=int, default=r.stage2_steps)
    t_all.add_argument("--batch", type=int, default=r.batch)
    t_all.add_argument("--patch", type=int, default=r.patch)
    t_all.add_argument("--synthetic", type=int, default=r.synthetic_cubes, help="synthetic cubes (0: none)")
    t_all.add_argument(
        "--prune-cameras",
        type=int,
        default=r.prune_cameras,
        help="cameras to render the training scenes through when pruning the MoC (0: no pruning)",
    )
    t_all.add_argument("--stage1-loss", choices=loss_names, default=r.stage1_loss)
    t_all.add_argument("--stage2-loss", choices=loss_names, default=r.stage2_loss)
    t_all.add_argument(
        "--latent-dim", type=int, default=r.latent_dim, help="d, the codebook width (level j: d*2^j channels)"
    )
    t_all.add_argument(
        "--tta-tau",
        type=float,
        default=r.tta_tau,
        help="temperature of the TTA entropy, stored in the checkpoint",
    )
    t_all.add_argument("--seed", type=int, default=r.seed)
    t_all.set_defaults(func=_train)
    t_cmp = train_sub.add_parser("compare", help="GANet-S2 vs MST++ vs root-poly on the same data and budget")
    t_cmp.add_argument("--data", type=Path, default=DEFAULT_DATA)
    t_cmp.add_argument(
        "--stage1",
        type=Path,
        default=Path("runs/weights/stage1_vqvae.pt"),
        help="a trained stage-1 checkpoint (from `mcga train all`)",
    )
    t_cmp.add_argument("--out", type=Path, default=Path("runs/compare"))
    t_cmp.add_argument("--steps", type=int, default=1500)
    t_cmp.add_argument("--models", default="rootpoly,mstpp,ganet_s2", help="which of rootpoly,mstpp,ganet_s2")
    t_cmp.add_argument("--synthetic", type=int, default=r.synthetic_cubes)
    t_cmp.add_argument("--loss", choices=loss_names, default=r.stage2_loss, help="both networks' loss")
    t_cmp.set_defaults(func=_compare)

    ev = sub.add_parser(
        "eval", help="NTIRE metrics on rendered CAVE-layout scenes under the paper's protocols"
    )
    ev.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="GANet/MST++ checkpoint or root-poly .npz (default: the bundled weights)",
    )
    ev.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA / "cave",
        help="a folder of CAVE-layout scenes (default: %(default)s, from the current directory)",
    )
    ev.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="the documented validation scenes (all scenes when the folder has none of them)",
    )
    ev.add_argument(
        "--camera",
        type=Path,
        default=None,
        help="response .npz (`filters` (31,3) or `ssf`); default: the model's training camera",
    )
    ev.add_argument("--camera-index", type=int, default=None, help="which camera of an `ssf` file")
    ev.add_argument(
        "--protocols",
        default="plain,mixed,bright+10,bright-10,bright+10+tta,bright-10+tta",
        help="comma-separated (default: %(default)s); the top-level mean and images are plain's",
    )
    ev.add_argument("--tta-steps", type=int, default=10)
    ev.add_argument(
        "--tta-lr", type=float, default=TTAConfig().lr, help="Adam's learning rate for one-shot TTA"
    )
    ev.add_argument(
        "--tta-tau",
        type=float,
        default=None,
        help="temperature of the TTA entropy (default: the checkpoint's)",
    )
    ev.add_argument(
        "--project",
        action="store_true",
        help="project every output onto the cubes that render to the input through the eval camera "
        "(for models without the camera-consistency layer built in: the baselines)",
    )
    ev.add_argument(
        "--json", action="store_true", help="print the JSON object on one line (default: indented)"
    )
    ev.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    ev.add_argument(
        "--report", type=Path, default=None, help="write a PNG report per image here (plain protocol)"
    )
    ev.set_defaults(func=_eval)

    bench = sub.add_parser(
        "bench",
        help="the benchmark suite (reported, never asserted); `mcga bench model` for the model alone",
    )
    bench.add_argument(
        "--sections", default="all", help="comma-separated: model,serving,batching,tta,memory,metrics"
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes and repeats: checks the tooling")
    bench.add_argument("--json", default=None, help="write the JSON result here")
    bench.add_argument("--markdown", type=Path, default=None, help="write the report here (BENCHMARKS.md)")
    bench.add_argument("--weights", type=Path, default=None, help="GANet checkpoint (default: bundled)")
    bench.add_argument("--threads", type=int, default=0, help="torch threads everywhere (0: torch's default)")
    bench.add_argument("--repeats", type=int, default=0, help="runs per figure (0: 5, or 2 with --quick)")
    bench.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu' or 'cuda'")
    bench.set_defaults(func=_bench_suite)
    bench_sub = bench.add_subparsers(dest="what")
    b_model = bench_sub.add_parser("model", help="GANet-S2 vs MST++: params, GMACs, CPU latency")
    b_model.add_argument("--weights", type=Path, default=None)
    b_model.add_argument("--json", default=None, help="write the JSON result here ('-': standard output)")
    b_model.add_argument("--repeats", type=int, default=5)
    b_model.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    b_model.set_defaults(func=_bench_model)

    rec = sub.add_parser("reconstruct", help="RGB image(s) -> hyperspectral cube file(s), in process")
    rec.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="PNG, JPEG, TIFF or H×W×3 .npy")
    rec.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="OUT.npy or OUT.tif(f); a directory for several inputs",
    )
    rec.add_argument(
        "--weights", type=Path, default=None, help="GANet checkpoint (default: MCGA_WEIGHTS/bundled)"
    )
    rec.add_argument("--color", choices=("linear", "srgb"), default="linear", help="input contract")
    rec.add_argument("--format", choices=("npy", "tiff"), default=None, help="output format in a directory")
    steps = rec.add_mutually_exclusive_group()
    steps.add_argument("--tta-steps", type=int, default=0, help="one-shot adaptation steps per image")
    steps.add_argument(
        "--session-steps",
        type=int,
        default=None,
        help="adapt across the inputs as one stream, N steps per frame",
    )
    rec.set_defaults(func=_reconstruct)

    serve = sub.add_parser("serve", help="run the REST + gRPC service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--http-port", type=int, default=None)
    serve.add_argument("--grpc-port", type=int, default=None)
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
