"""`dse model [NAME]` (the zoo, or one model's cut points and head) and `dse predict` (the cost models'
prediction for one configuration, with the battery lifetime under a deployment)."""
from __future__ import annotations

import json

from cost_models.lifetime import lifetime_for
from dse.commands.lifetime import breakdown_text, deployment_from_args
from dse.errors import UserError
from dse.reports.menus import cost_breakdown, cut_point_json, cut_point_menu, zoo_json, zoo_listing
from dse.reports.tables import terminal_width
from dse.study.price import price
from models.tasks import get_task
from models.zoo import get_model
from vocabulary.configuration import DOMAINS, STREAMING_FIXED, Configuration


def cmd_model(args) -> int:
    if args.name is None:
        if args.cut is not None:
            raise UserError("--cut needs a model NAME")
        print(json.dumps(zoo_json(), indent=2) if args.json else zoo_listing(terminal_width()))
        return 0
    try:
        model = get_model(args.name)
        classes = args.classes or get_task(model.source_task).classes
        if args.json:
            print(json.dumps(cut_point_json(model, args.cut, args.hidden, classes), indent=2))
        else:
            print(cut_point_menu(model, args.cut, args.hidden, classes, terminal_width()))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_predict(args) -> int:
    deployment = deployment_from_args(args)
    lifetime = None
    try:
        model = get_model(args.model)
        model.check_cut(args.cut)
        task = get_task(args.task or model.source_task)  # every zoo model names its registered source task
        classes = args.classes or task.classes
        if not classes:
            raise UserError(f"task {task.name!r} does not fix its classes; give --classes")
        config = Configuration(task=task.name, model=args.model, cut=args.cut, hidden=args.hidden,
                               samples=args.samples, **_training_args(args))
        prediction = price(config, args.board, classes=classes, firmware=args.firmware)
        if deployment is not None:
            lifetime = lifetime_for(config, prediction, deployment, args.board, classes=classes,
                                    firmware=args.firmware)
    except ValueError as exc:  # unknown names, BoardSpecError, CalibrationError, impossible configurations
        raise UserError(str(exc)) from None
    if args.json:
        extra = {} if lifetime is None else {"deployment": deployment.to_dict(), "lifetime": lifetime.to_dict()}
        print(json.dumps({"configuration": config.to_dict(), "board": args.board,
                          "classes": classes,
                          "prediction": prediction.to_dict(), **extra}, indent=2))
    else:
        print(cost_breakdown(prediction, config, args.board, classes, terminal_width()))
        if lifetime is not None:
            print("\n" + breakdown_text(lifetime, deployment))
    return 0


def _training_args(args) -> dict:
    """--epochs, --batch, --restore-best, --mode and --replay as Configuration values: streaming sets batch 1,
    epochs 1 and restore-best off; a flag that says otherwise is a conflict (UserError naming it)."""
    given = {key: getattr(args, key) for key in STREAMING_FIXED}  # None: not given
    flags = {key: "--" + key.replace("_", "-") for key in STREAMING_FIXED}
    if args.mode == "streaming":
        for key, fixed in STREAMING_FIXED.items():
            if given[key] is not None and given[key] != fixed:
                shown = flags[key] if isinstance(fixed, bool) else f"{flags[key]} {given[key]}"
                raise UserError(f"{shown}: --mode streaming trains one pass of batch-1 steps and keeps the last "
                                f"weights ({', '.join(f'{k} {str(v).lower()}' for k, v in STREAMING_FIXED.items())}); "
                                f"leave {flags[key]} out")
        if args.replay > args.samples:
            raise UserError(f"--replay {args.replay}: the ring cannot be larger than the samples (--samples "
                            f"{args.samples})")
        return {**STREAMING_FIXED, "mode": "streaming", "replay": args.replay}
    if args.replay:
        raise UserError(f"--replay {args.replay}: replay is a streaming setting; add --mode streaming")
    if args.epochs is None:
        raise UserError("--epochs is required in mode stored (the training budget)")
    return {key: DOMAINS[key].default if value is None else value for key, value in given.items()}
