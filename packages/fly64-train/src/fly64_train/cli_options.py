"""The training flags of ``fly64-train run`` and ``train-one``, generated from the config dataclasses.

Each field of :class:`TrainConfig` (and, through ``NESTED``, of :class:`ModelConfig` and
:class:`TorchOptions`) declares its flag in ``metadata["option"]``; :func:`add_train_options` turns the
declarations into argparse arguments and :func:`train_config_from_args` turns the
parsed values back into a typed :class:`TrainConfig`. A flag not given stays
:data:`UNSET`, so the dataclass default (the study design's, for K and the
grouping seed) applies: defaults live on the fields, nowhere here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from typing import Any

from fly64_data.cli_common import UNSET
from fly64_train.core.seam import BACKENDS
from fly64_train.training.config import TrainConfig
from fly64_train.training.option import NESTED, Internal, Option

#: Choices known only above the training layer: the backend names live with the backend seam.
_CHOICES = {"backend": tuple(BACKENDS)}
#: The help group of a nested config's flags (the flags keep their own names: ``--accelerator``, not
#: ``--torch-accelerator``); the top-level fields' group is "training".
_GROUPS = {"model": "model shape", "torch": "torch backend"}
#: What a help group is for, where its title does not say it.
_GROUP_HELP = {"torch backend": "How Lightning runs a torch job. The tensorflow backend ignores these and\n"
                                "refuses a --precision or --strategy other than the default."}


def declared_options(cls: type = TrainConfig, prefix: str = "") -> Iterator[tuple[str, Option]]:
    """``(dest, Option)`` of every field with a flag, nested configs included (``model.base_width``).

    Raises
    ------
    TypeError
        A field declares neither a flag nor a reason not to have one.
    """
    for f in fields(cls):
        spec = f.metadata.get("option")
        if spec == NESTED:
            yield from declared_options(_nested_class(cls, f.name), f"{prefix}{f.name}.")
        elif isinstance(spec, Option):
            yield f"{prefix}{f.name}", spec
        elif not isinstance(spec, Internal):
            raise TypeError(f"{cls.__name__}.{f.name} declares no command-line option "
                            "(metadata=option(...) or internal(reason))")


def _nested_class(cls: type, name: str) -> type:
    # Annotations are strings under `from __future__ import annotations`; the default factory is the class.
    factory = next(f for f in fields(cls) if f.name == name).default_factory
    if not isinstance(factory, type) or not is_dataclass(factory):
        raise TypeError(f"{cls.__name__}.{name}: a NESTED field needs a dataclass default_factory")
    return factory


def flag_names(dest: str, spec: Option) -> list[str]:
    """``--kebab-case`` and ``--snake_case`` of the field (or the declared flag), then the aliases."""
    name = dest.rsplit(".", 1)[-1]
    # argparse derives --no-X from each spelling of a toggle; --no-batch_norm would be noise.
    snake = [] if spec.kind == "toggle" else [f"--{name}"]
    main = [spec.flag] if spec.flag else [f"--{name.replace('_', '-')}", *snake]
    return list(dict.fromkeys([*main, *spec.aliases]))


def add_train_options(parser: argparse.ArgumentParser, *, jobs: bool) -> None:
    """Add every training flag; with ``jobs`` also the job fields (``--train``, ``--job-dir``, ...)."""
    groups: dict[str, Any] = {}
    for dest, spec in declared_options():
        if spec.scope == "job" and not jobs:
            continue
        nest, _, _ = dest.rpartition(".")
        title = "job" if spec.scope == "job" else _GROUPS.get(nest, "training")
        if title not in groups:
            groups[title] = parser.add_argument_group(title, _GROUP_HELP.get(title))
        group = groups[title]
        kwargs: dict[str, Any] = {"dest": dest, "help": spec.help, "default": UNSET}
        if spec.kind == "value":
            kwargs.update(type=spec.type, metavar=spec.metavar, choices=_CHOICES.get(dest, spec.choices))
            if spec.required:
                kwargs.update(required=True, default=None)
            group.add_argument(*flag_names(dest, spec), **kwargs)
        elif spec.kind == "toggle":
            group.add_argument(*flag_names(dest, spec), action=argparse.BooleanOptionalAction, **kwargs)
        else:
            names = flag_names(dest, spec)
            if spec.kind == "false":
                names = [n.replace("--", "--no-", 1) for n in names]
            group.add_argument(*names, action="store_const", const=spec.kind == "true", **kwargs)


def train_config_from_args(args: argparse.Namespace, **job_fields: Any) -> TrainConfig:
    """The :class:`TrainConfig` the parsed flags ask for; ``job_fields`` fill in what the flags do not."""
    given = {dest: getattr(args, dest) for dest, _ in declared_options()
             if getattr(args, dest, UNSET) is not UNSET}
    top = {dest: value for dest, value in given.items() if "." not in dest}
    nested: dict[str, dict[str, Any]] = {}
    for dest, value in given.items():
        if "." in dest:
            nest, name = dest.split(".", 1)
            nested.setdefault(nest, {})[name] = value
    objects = {nest: _nested_class(TrainConfig, nest)(**values) for nest, values in nested.items()}
    return TrainConfig(**{**job_fields, **top, **objects})


def check_accelerator_here(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error (exit 2) for ``--accelerator gpu``/``cuda`` on a node that shows no GPU.

    Asked of the node the jobs run on only (not of a client that submits to a remote
    scheduler), before anything is read; GPUs are counted without importing a framework.
    """
    from fly64_train.core.device import normal_device
    from fly64_train.studies.worker_placement import detect_gpus

    accelerator = getattr(args, "torch.accelerator", UNSET)
    if accelerator is not UNSET and normal_device(accelerator) == "cuda" and not detect_gpus():
        parser.error(f"--accelerator {accelerator}: this node shows no GPU (CUDA_VISIBLE_DEVICES, nvidia-smi); "
                     "use --accelerator cpu or auto")

