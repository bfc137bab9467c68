"""The `allweather` command: one entry point, one subcommand per job."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .options import BY_NAME, DEFAULT_CACHE, DEFAULTS
from .prior.registry import PROVIDERS
from .runtime.registry import BACKENDS, parse_backend


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


def _load_model(args: argparse.Namespace):
    """The network from --weights (safetensors), else --config's architecture with random
    weights, else the shipped rt weights (what the node runs)."""
    from .model import build_model
    from .pipeline import load_model

    if args.config and not args.weights:
        return build_model(args.config)
    return load_model(args.weights or "")


def _export(args: argparse.Namespace) -> int:
    from .runtime.export import export_onnx

    path = export_onnx(_load_model(args), args.out, opset=args.opset)
    print(f"wrote {path} (inputs image, prior_kv, prior_bias; dynamic height, width, prior length)")
    return 0


ENGINE_OPTIONS = ("weights", "frame_gate", "processing_max_side", "cache_dir")
"""The node parameters build-engine takes as flags of the same names (precision: `backend`'s)."""


def _engine_settings(args: argparse.Namespace) -> None:
    """Fill the build-engine flags not given: from the node's parameters file (--params), so
    the engine is the one that node looks up, then from the node's defaults (precision fp16,
    the Jetson's; the shipped weights)."""
    values = {}
    if args.params:
        import yaml

        document = yaml.safe_load(Path(args.params).read_text()) or {}
        values = next((node["ros__parameters"] for node in document.values()
                       if isinstance(node, dict) and "ros__parameters" in node), None)
        if values is None:
            raise ValueError(f"{args.params} has no ros__parameters for a node")
        name, precision = parse_backend(values.get("backend", DEFAULTS["backend"]))
        if name not in ("auto", "tensorrt"):
            raise ValueError(f"{args.params} runs backend {name}, which uses no TensorRT "
                             f"engine: nothing to build for it")
        args.precision = args.precision or precision
    args.precision = args.precision or "fp16"
    for option in ENGINE_OPTIONS:
        if getattr(args, option) is None:
            setattr(args, option, values.get(option, DEFAULTS[option]))
    args.cache_dir = str(Path(args.cache_dir).expanduser())  # as the node reads it


def _build_engine(args: argparse.Namespace) -> int:
    """Build (or find) the TensorRT engine ahead of time, as one does on a Jetson: for the
    weights, working resolution and precision the node will run with."""
    from .model.profile import parse_size
    from .pipeline import PipelineConfig, load_model, restorer_weights
    from .runtime.export import cached_onnx
    from .runtime.tensorrt_backend import (
        DEFAULT_SIZES,
        TensorRTBackend,
        engine_profile,
        import_tensorrt,
    )

    _engine_settings(args)
    if args.size and args.processing_max_side:
        raise ValueError("--size is for --processing-max-side 0 (frames restored at the "
                         "camera's own size)")
    profile = engine_profile(args.processing_max_side,
                             [parse_size(s) for s in args.size] or DEFAULT_SIZES)
    import_tensorrt()  # say at once when it is missing, before exporting anything
    weights = restorer_weights(PipelineConfig(weights=args.weights, frame_gate=args.frame_gate,
                                              cache_dir=args.cache_dir))
    onnx_path = cached_onnx(load_model(str(weights)), args.cache_dir)
    backend = TensorRTBackend(onnx_path, engine_dir=args.cache_dir, precision=args.precision,
                              profile=profile)
    print(json.dumps(backend.describe(), indent=2))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .model.profile import parse_size
    from .runtime import bench

    sizes = [parse_size(s) for s in args.size]
    model = _load_model(args)
    with tqdm(total=len(args.backend) * len(sizes) * args.frames, desc="bench",
              disable=args.json, leave=False) as bar:
        results = bench.run(model, args.backend, sizes, args.cache_dir, frames=args.frames,
                            progress=bar.update)
    if args.json:
        print(json.dumps({"weights": args.weights or "", "config": args.config,
                          "results": results}, indent=2))
    else:
        print(bench.markdown(results))
    return 0


def _option_value(override: str, default, text: str):
    """`text` as the type of the option's `default`: numbers and words cast as they are, yes/no,
    lists and mappings read as YAML (bool("false") would be True)."""
    if not isinstance(default, (bool, list, dict)):
        return type(default)(text)
    import yaml

    value = yaml.safe_load(text)
    if not isinstance(value, type(default)):
        kind = {bool: "true or false", list: "a YAML list, e.g. [a, b]",
                dict: "a YAML mapping, e.g. {rain: 2.0}"}[type(default)]
        raise ValueError(f"--set {override}: expected {kind}")
    return value


def _train(args: argparse.Namespace) -> int:
    from .training.loop import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    overrides = {}
    for override in args.set or []:
        key, _, value = override.partition("=")
        if key not in TrainConfig.__dataclass_fields__:
            raise ValueError(f"--set {override}: unknown training option {key!r}")
        overrides[key] = _option_value(override, getattr(config, key), value)
    config = dataclasses.replace(config, **overrides)  # checked again, as the YAML was
    print(f"trained weights: {train(config, resume=not args.restart)}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    """The prior one provider gives an image (no text encoder: printing needs no tokens); for a
    folder or several paths, one JSON line per image and a summary line (see the README)."""
    from .description import TYPES
    from .media import read_rgb
    from .prior.registry import create_provider

    provider = create_provider(args.provider, None, vlm_model=args.vlm_model,
                               fixed_text=args.fixed_text, allow_download=args.allow_download,
                               estimator_weights=args.estimator_weights,
                               vlm_rain_check=args.vlm_rain_check)
    if len(args.images) > 1 or Path(args.images[0]).is_dir():
        return _describe_many(provider, args.images)
    prior = provider.describe(read_rgb(Path(args.images[0])))
    if args.json:
        print(prior.to_json())
        return 0
    print(prior.text)
    if prior.source_text is not None:
        print(f"  in the provider's words: {prior.source_text}")
    print("  " + "  ".join(f"{t} {prior.labels[t]:.2f}" for t in TYPES))
    print(f"  severity {prior.severity}  confidence {prior.confidence:.2f}  "
          f"provider {prior.provider}")
    return 0


def _describe_many(provider, paths: list[str]) -> int:
    """JSON lines to stdout, flushed per image so a long run can be followed or piped; exit 1
    when some file could not be described (each has its error line), 2 when none was found."""
    from .prior.batch import describe_paths, image_paths, summarise

    if not image_paths(paths):
        raise ValueError(f"no images in {', '.join(paths)}")
    records = []
    for record in describe_paths(provider, paths):
        records.append(record)
        print(json.dumps(record), flush=True)
    summary = summarise(records)
    print(json.dumps({"summary": summary}), flush=True)
    return 1 if summary["errors"] else 0


def _pipeline_config(args: argparse.Namespace):
    """The PipelineConfig of the flags _add_pipeline_arguments adds (the rest: defaults)."""
    from .pipeline import PipelineConfig

    return PipelineConfig(weights=args.weights or "", frame_gate=args.frame_gate,
                          backend=args.backend,
                          provider=args.provider, fixed_text=args.fixed_text or "",
                          vlm_model=args.vlm_model or "", vlm_rain_check=args.vlm_rain_check,
                          estimator_weights=args.estimator_weights,
                          processing_max_side=args.processing_max_side,
                          processing_max_side_snow=args.processing_max_side_snow,
                          prior_memory=args.memory, transient_frames=args.transient_frames)


def _bag_exit_code(report: dict) -> int:
    """0: every frame restored; 1: partial results (the report says what went wrong)."""
    latency = report["latency_ms_p50"]
    print(f"{report['restored_frames']}/{report['frames']} frames restored, latency p50 "
          + ("n/a" if latency is None else f"{latency:.1f} ms")
          + (f", PSNR {report['psnr']:.2f} dB (input {report['input_psnr']:.2f} dB)"
             if report.get("psnr") is not None else ""))
    if report.get("stopped"):
        print(f"stopped early: {report['stopped']}")
    return 0 if report["frames"] and not report["dropped"] and not report.get("stopped") else 1


def _eval_bag(args: argparse.Namespace) -> int:
    from .evaluation.bags import BagError

    config = _pipeline_config(args)
    try:
        if args.live:
            from .evaluation.live import eval_live

            report = eval_live(args.bag, args.topic, args.out, gt_topic=args.gt_topic,
                               config=config, sim_time=args.sim_time)
        else:
            from .evaluation.eval_bag import eval_bag

            report = eval_bag(args.bag, args.topic, args.out, gt_topic=args.gt_topic,
                              config=config, refresh_every=args.refresh_every)
    except BagError as exc:
        print(f"allweather eval-bag: error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {Path(args.out) / 'report.md'}")
    return _bag_exit_code(report)


def _make_bag(args: argparse.Namespace) -> int:
    from .evaluation.make_bag import make_bag, parse_weather
    from .model.profile import parse_size

    report = make_bag(args.out, images=args.images, video=args.video, frames=args.frames,
                      fps=args.fps, size=parse_size(args.size),
                      weather=parse_weather(args.weather) if args.weather else None,
                      seed=args.seed, storage=args.storage, compressed=args.compressed)
    print(f"wrote {report['bag']}: {report['frames']} frames on {report['topic']}, "
          f"ground truth on {report['gt_topic']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import time

    from .evaluation.demo import run_demo
    from .model.profile import parse_size

    started = time.perf_counter()
    sizing = {"size": parse_size(args.size)} if args.size else {}
    report = run_demo(args.out, live=args.live, config=_pipeline_config(args),
                      **({"frames": args.frames} if args.frames else {}), **sizing)
    print(f"demo finished in {time.perf_counter() - started:.0f} s; "
          f"restored bag {report['output_bag']}, report {Path(args.out) / 'report.md'}")
    return _bag_exit_code(report)


def _restore(args: argparse.Namespace) -> int:
    from .media import restore_path
    from .pipeline import build_pipeline

    pipeline = build_pipeline(_pipeline_config(args), asynchronous=False)
    print(restore_path(pipeline, args.input, args.output))
    return 0


def _eval(args: argparse.Namespace) -> int:
    if sum(map(bool, (args.synthetic, args.paired, args.real))) != 1:
        raise ValueError("evaluate on one of: --synthetic, --paired DIR or --real DIR")
    if args.val_seed is not None and not (args.synthetic and args.split == "val"):
        raise ValueError("--val-seed draws the weather of --synthetic --split val; the test "
                         "split's weather is fixed")
    if args.real:
        return _eval_real(args)
    from .data.sources import default_scenes
    from .evaluation import synthetic, synthetic_report
    from .model.weights import PACKAGED, load_weights
    from .pipeline import PipelineConfig, load_model, restorer_weights
    from .prior.registry import create_provider

    full = load_model(str(restorer_weights(PipelineConfig(weights=args.weights or "",
                                                          frame_gate=args.frame_gate))))
    no_prior_path = Path(args.no_prior_weights or PACKAGED / "rt_noprior.safetensors")
    no_prior = load_weights(no_prior_path) if no_prior_path.is_file() else None
    estimator = None
    if args.provider != "none":
        estimator = create_provider(args.provider, None, vlm_model=args.vlm_model,
                                    fixed_text=args.fixed_text,
                                    estimator_weights=args.estimator_weights,
                                    vlm_rain_check=args.vlm_rain_check)
    if args.synthetic:
        val_seed = synthetic.VALIDATION_SEED if args.val_seed is None else args.val_seed
        result = synthetic.evaluate_synthetic(full, default_scenes(), no_prior, estimator,
                                              repeats=args.repeats, split=args.split,
                                              val_seed=val_seed, drive_readings=args.memory)
    else:
        from .data.datasets import PairedFolderDataset

        result = synthetic.evaluate(full, PairedFolderDataset(args.paired, crop=None), no_prior,
                                    estimator,
                                    median_kernel=synthetic.choose_median_kernel(default_scenes()))
    if args.out:
        command = "allweather eval " + " ".join(sys.argv[2:])
        print(f"wrote {synthetic_report.write(result, args.out, command)}", file=sys.stderr)
    if args.json:
        print(json.dumps(synthetic_report.to_json(result), indent=2))
    else:
        print(synthetic_report.table(result))
    return 0


def _eval_real(args: argparse.Namespace) -> int:
    """The provider's reading of labelled real photos (no restorer involved)."""
    from tqdm import tqdm

    from .data.sources import default_scenes
    from .evaluation import real, synthetic_prior
    from .prior.registry import create_provider

    if args.provider == "none":
        raise ValueError("--real scores a provider's descriptions; --provider none gives none")
    provider = create_provider(args.provider, None, vlm_model=args.vlm_model,
                               fixed_text=args.fixed_text,
                               estimator_weights=args.estimator_weights,
                               vlm_rain_check=args.vlm_rain_check)
    photos = len(real.photos_in(args.real, args.fold))
    frames = len(synthetic_prior.RENDERER_SETS) * synthetic_prior.frames_per_set(args.repeats)
    with tqdm(total=photos + frames, desc="describe", leave=False, disable=args.json) as bar:
        synthetic = synthetic_prior.evaluate_synthetic_prior(provider, default_scenes(),
                                                             args.repeats, progress=bar.update)
        result = real.evaluate_real(provider, args.real, args.out, progress=bar.update,
                                    synthetic=synthetic, drive_readings=args.memory,
                                    short_side=args.short_side, only_fold=args.fold)
    if args.out:
        print(f"wrote {Path(args.out) / 'results.json'} and reliability.png", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.json else real.table(result))
    return 0


def _option_help(name: str) -> str:
    option = BY_NAME[name]
    return f"{option.description} ({option.allowed}; default {option.default!r})"


def _option_flag(name: str):
    """An argparse type that reads a flag as the option `name` reads it, and refuses what the
    option refuses, in the option's own words."""
    option = BY_NAME[name]

    def read(text: str):
        try:
            value = option.parse(text)
        except ValueError:
            value = None
        if value is None or not option.check(value):
            raise argparse.ArgumentTypeError(f"{text!r}: {name} takes {option.allowed}")
        return value
    return read


def _add_estimator_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--estimator-weights", type=_option_flag("prior.estimator_weights"),
                        default=BY_NAME["prior.estimator_weights"].default,
                        help=_option_help("prior.estimator_weights"))


def _add_vlm_rain_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vlm-rain-check", type=_option_flag("prior.vlm_rain_check"),
                        default=BY_NAME["prior.vlm_rain_check"].default,
                        help=_option_help("prior.vlm_rain_check"))


def _add_frame_gate(parser: argparse.ArgumentParser, default: bool | None) -> None:
    parser.add_argument("--frame-gate", type=_option_flag("frame_gate"), default=default,
                        help=_option_help("frame_gate"))


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that share the node's options: their defaults and help are the options'."""
    parser.add_argument("--weights", default=BY_NAME["weights"].default,
                        help=_option_help("weights"))
    _add_frame_gate(parser, BY_NAME["frame_gate"].default)
    parser.add_argument("--backend", default=BY_NAME["backend"].default,
                        help=_option_help("backend"))
    parser.add_argument("--provider", default=BY_NAME["prior.provider"].default,
                        choices=list(PROVIDERS), help=_option_help("prior.provider"))
    parser.add_argument("--fixed-text", default=BY_NAME["prior.fixed_text"].default,
                        help=_option_help("prior.fixed_text"))
    parser.add_argument("--vlm-model", default=BY_NAME["prior.vlm_model"].default,
                        help=_option_help("prior.vlm_model"))
    _add_vlm_rain_check(parser)
    _add_estimator_weights(parser)
    parser.add_argument("--processing-max-side", type=_option_flag("processing_max_side"),
                        default=BY_NAME["processing_max_side"].default,
                        help=_option_help("processing_max_side"))
    parser.add_argument("--processing-max-side-snow",
                        type=_option_flag("processing_max_side_snow"),
                        default=BY_NAME["processing_max_side_snow"].default,
                        help=_option_help("processing_max_side_snow"))
    parser.add_argument("--memory", type=_option_flag("prior.memory"),
                        default=BY_NAME["prior.memory"].default,
                        help=_option_help("prior.memory") + "; a video, a bag or a live "
                        "stream pools, a folder of photos never does")
    parser.add_argument("--transient-frames", type=_option_flag("transient_frames"),
                        default=BY_NAME["transient_frames"].default,
                        help=_option_help("transient_frames") + "; a video, a bag or a live "
                        "stream only: a photo stands alone")


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="safetensors weights (default: the shipped rt, as the "
                                          "node's)")
    parser.add_argument("--config", help="instead: a variant (rt, base) or a YAML model file, "
                                         "with random weights")


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

    export = sub.add_parser("export", help="export the per-frame graph to ONNX")
    _model_arguments(export)
    export.add_argument("--out", required=True, help="ONNX file to write")
    export.add_argument("--opset", type=int, default=18)
    export.set_defaults(func=_export)

    train = sub.add_parser("train", help="train (or resume training) from a YAML config; "
                                         "runs under torchrun for several GPUs")
    train.add_argument("--config", required=True, help="training YAML, e.g. config/train_rt.yaml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override an option of the YAML, e.g. --set steps=100, "
                            "--set channels_last=false, --set 'type_weights={rain: 2.0}'")
    train.add_argument("--restart", action="store_true",
                       help="ignore an existing checkpoint in the output folder")
    train.set_defaults(func=_train)

    describe = sub.add_parser("describe", help="print the degradation prior of an image, or "
                                               "one JSON line per image of folders")
    describe.add_argument("images", nargs="+", metavar="IMAGE",
                          help="an image file; or folders (searched recursively) and several "
                               "files: one JSON line each, then a summary line")
    describe.add_argument("--provider", default=BY_NAME["prior.provider"].default,
                          choices=list(PROVIDERS))
    describe.add_argument("--vlm-model", help="local VLM folder or cached hub id (provider vlm)")
    describe.add_argument("--fixed-text", help="the description (provider fixed)")
    _add_vlm_rain_check(describe)
    _add_estimator_weights(describe)
    describe.add_argument("--allow-download", action="store_true",
                          help="let the vlm provider download a model that is not cached")
    describe.add_argument("--json", action="store_true",
                          help="print JSON (always, for folders and several files)")
    describe.set_defaults(func=_describe)

    restore = sub.add_parser("restore", help="restore an image, a folder of images or a video")
    restore.add_argument("input", help="image, folder of images, or video file")
    restore.add_argument("output", help="image, folder (file names kept) or video file")
    _add_pipeline_arguments(restore)
    restore.set_defaults(func=_restore)

    evaluate = sub.add_parser("eval", help="PSNR/SSIM per type and severity against baselines; "
                                           "or the prior's accuracy on labelled real photos")
    evaluate.add_argument("--synthetic", action="store_true",
                          help="the fixed-seed synthetic test split (held-out scenes)")
    evaluate.add_argument("--paired", metavar="DIR",
                          help="a paired dataset (All-weather, Snow100K, Raindrop, WeatherStream)")
    evaluate.add_argument("--real", metavar="DIR",
                          help="real photos labelled by eye (DIR/labels.json, made by "
                               "tools/real_weather_set.py): type and severity accuracy of the "
                               "provider, beside its figures on held-out synthetic frames "
                               "(--repeats per recipe), reliability diagram with --out")
    evaluate.add_argument("--weights", help="restorer weights (default: shipped rt)")
    _add_frame_gate(evaluate, BY_NAME["frame_gate"].default)
    evaluate.add_argument("--no-prior-weights",
                          help="the no-prior ablation's weights (default: shipped rt_noprior)")
    evaluate.add_argument("--provider", default="builtin",
                          help="estimator also evaluated end to end (none: skip); with --real, "
                               "the provider scored")
    evaluate.add_argument("--vlm-model")
    evaluate.add_argument("--fixed-text")
    _add_vlm_rain_check(evaluate)
    _add_estimator_weights(evaluate)
    evaluate.add_argument("--repeats", type=int, default=4, help="frames per recipe")
    evaluate.add_argument("--memory", type=int, default=BY_NAME["prior.memory"].default,
                          help="the built-in estimator also scored on drives: each photo or "
                               "frame read after others of its weather, this many in all, "
                               "pooled as prior.memory pools a stream's readings (1: not)")
    evaluate.add_argument("--short-side", type=int, metavar="PIXELS",
                          help="with --real, each photo first shrunk to at most this short "
                               "side, as a camera of that resolution sees it (e.g. 240)")
    evaluate.add_argument("--fold", choices=("fit", "check"),
                          help="with --real, only the photos of that fold: the calibration "
                               "(python -m allweather_ros.evaluation.calibrate) fits on fit, so "
                               "check gives figures no fit has seen")
    evaluate.add_argument("--split", choices=("test", "val"), default="test",
                          help="synthetic scenes to score: test, or val to choose or tune on")
    evaluate.add_argument("--val-seed", type=int,
                          help="weather seed of --split val (default 7); another draws fresh "
                               "weather on the same scenes, to replicate a choice made on it")
    evaluate.add_argument("--out", help="folder for results.json, report.md and figures")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=_eval)

    # listed for --help only: main() hands `launch ...` to the launcher before parsing, since
    # its arguments (--config, -p name:=value, -r ...) are the launcher's and the node's
    sub.add_parser("launch", help="start restore_node with the packaged config and Fast DDS "
                                  "profile (where ROS 2 launch is not installed); "
                                  "allweather launch -h for its options")

    eval_bag = sub.add_parser("eval-bag",
                              help="replay a bag through the restorer: output bag and report")
    eval_bag.add_argument("bag", help="rosbag2 folder, or a .db3 or .mcap file")
    eval_bag.add_argument("--topic", required=True,
                          help="camera topic (Image or CompressedImage)")
    eval_bag.add_argument("--gt-topic", help="clean ground-truth topic, for PSNR and SSIM")
    eval_bag.add_argument("--out", required=True, help="folder for the output bag and report")
    eval_bag.add_argument("--live", action="store_true",
                          help="through the real node at the recorded rate (needs ROS 2)")
    eval_bag.add_argument("--sim-time", action="store_true",
                          help="with --live: publish /clock from the bag and use_sim_time")
    eval_bag.add_argument("--refresh-every", type=int,
                          help="direct mode: describe the prior every N frames "
                               "(default: the node's period at the bag's rate)")
    _add_pipeline_arguments(eval_bag)
    eval_bag.set_defaults(func=_eval_bag)

    make_bag = sub.add_parser(
        "make-bag", help="write a demo bag: weathered frames plus their clean ground truth")
    make_bag.add_argument("out", help="bag folder to create")
    source = make_bag.add_mutually_exclusive_group()
    source.add_argument("--images", help="folder of clean photos (default: scikit-image's)")
    source.add_argument("--video", help="clean video file; its own motion is kept")
    make_bag.add_argument("--frames", type=int, default=60)
    make_bag.add_argument("--fps", type=float, default=10.0)
    make_bag.add_argument("--size", default="320x240", help="frame size WIDTHxHEIGHT")
    make_bag.add_argument("--weather", help="e.g. rain:heavy,raindrop:slight "
                                            "(default: a random recipe per shot)")
    make_bag.add_argument("--seed", type=int, default=0)
    make_bag.add_argument("--storage", default="sqlite3", help="sqlite3 or mcap")
    make_bag.add_argument("--compressed", action="store_true",
                          help="JPEG CompressedImage on <topic>/compressed")
    make_bag.set_defaults(func=_make_bag)

    demo = sub.add_parser(
        "demo", help="the main job: a rainy sequence restored with the defaults, plus a report")
    demo.add_argument("--out", default="allweather_demo", help="folder for bags and report")
    demo.add_argument("--live", action="store_true",
                      help="through the real ROS 2 node instead of the pipeline directly")
    demo.add_argument("--frames", type=int, help="default: 60")
    demo.add_argument("--size", help="WIDTHxHEIGHT (default: 320x240)")
    _add_pipeline_arguments(demo)
    demo.set_defaults(func=_demo)

    engine = sub.add_parser("build-engine", help="build the TensorRT engine ahead of time")
    engine.add_argument("--params", metavar="FILE",
                        help="the node's parameters file (config/restore.yaml): build the "
                             "engine that node looks up (its backend's precision, weights, "
                             "frame_gate, processing_max_side, cache_dir); flags given still "
                             "win")
    engine.add_argument("--weights", help="restorer weights (default: the shipped rt, as the "
                                          "node's)")
    _add_frame_gate(engine, None)
    engine.add_argument("--precision", choices=BACKENDS["tensorrt"],
                        help="default: fp16, or the --params backend's (auto: fp32)")
    engine.add_argument("--processing-max-side", type=int,
                        help="the node's working resolution (default "
                             f"{DEFAULTS['processing_max_side']}): the engine takes every frame "
                             "shrunk to it, as the node's own (0: --size)")
    engine.add_argument("--size", nargs="+", default=[],
                        help="with --processing-max-side 0: camera sizes WIDTHxHEIGHT, the "
                             "first optimised for (default 640x480 1280x720 1920x1080)")
    engine.add_argument("--cache-dir", help="where the ONNX file and the engine are kept "
                                            f"(default {DEFAULT_CACHE})")
    engine.set_defaults(func=_build_engine)

    bench = sub.add_parser("bench", help="latency, FPS and fidelity per backend and frame size")
    _model_arguments(bench)
    bench.add_argument("--backend", nargs="+", default=["onnxruntime", "torch"],
                       help=BY_NAME["backend"].allowed)
    bench.add_argument("--size", nargs="+", default=["640x480", "1280x720", "1920x1080"])
    bench.add_argument("--frames", type=int, default=20, help="timed frames per backend and size")
    bench.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                       help="where exported ONNX files and engines are kept")
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["launch"]:
        from .ros.launcher import launch_main

        return launch_main(argv[1:])
    args = build_parser().parse_args(argv)
    from .runtime.backend import BackendUnavailable  # after parsing: --help needs no torch

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, BackendUnavailable) as exc:
        print(f"allweather {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
