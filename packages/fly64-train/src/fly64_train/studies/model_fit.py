"""Whether the model flags can build a model for each job's data, checked from the NPZ headers.

``--input-fraction`` and ``--depth`` must fit the patch size N of the data (the encoder's
crop is ``input_fraction * N`` and must halve ``depth`` times, the decoders must reach
N/2). N is known only from the data, so the check runs once the runner has planned
the jobs and read their headers, before anything is written, and for a dry run too:
a plan that could never train is refused as a usage error instead of recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fly64_data.npz_reader import npz_headers
from fly64_train.studies.job_spec import JobSpec
from fly64_train.training.option import FlagError


def check_model_fits(specs: Sequence[JobSpec]) -> None:
    """Raise :class:`FlagError` naming the model flags when a job's data cannot take the model they ask for.

    Reads only the ``.npy`` header of each distinct training file's ``diffraction`` member.
    """
    checked: set[tuple[int, int]] = set()
    for spec in specs:
        try:
            header = npz_headers(spec.train.train_path).get("diffraction")
        except (ValueError, OSError):
            continue  # an unreadable file is that job's failure, recorded when the job reads it
        if header is None or len(header.shape) != 3:
            continue  # the data contract's own check names the file when the job reads it
        n, gridsize = int(header.shape[-1]), spec.train.gridsize
        if (n, gridsize) in checked:
            continue
        model = spec.train.model
        try:
            replace(model, patch_size=n, gridsize=gridsize).check()
        except ValueError as exc:
            raise FlagError(f"--input-fraction {model.input_fraction:g} --depth {model.depth}: cannot build the "
                            f"model for {spec.job.label()} (N = {n} in {spec.train.train_path}): "
                            f"{' '.join(str(exc).split())}") from None
        checked.add((n, gridsize))
