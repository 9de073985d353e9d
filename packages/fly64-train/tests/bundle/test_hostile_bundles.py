"""Standing hostile suite for the bundle loader (#11 cases 11 and 12, and the bundle items around them).

Every bundle here is built by the test itself, byte by byte where a normal zip
writer would refuse to lie: a zip bomb, a corrupt deflate stream, a header that
understates its member, a member named like a path outside the folder. Each one
must end in a one-line :class:`BundleError` naming the file (and the member),
never in a traceback from zipfile/zlib, never in gigabytes of memory.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fly64_data.sample import synthetic_probe
from fly64_train import BundleError, load_bundle, save_bundle
from fly64_train.backends.torch.model import PtychoPINN
from fly64_train.training.model_config import ModelConfig

GIB = 1 << 30
RSS_LIMIT_MB = 300


@dataclass(frozen=True)
class Zeros:
    """A member of ``size`` zero bytes, deflated in 1 MiB steps so that neither the test nor the file is large."""

    size: int


def _deflate_zeros(size: int, out) -> tuple[int, int]:
    """Stream raw deflate of ``size`` zeros into ``out``; returns (compressed size, crc32).

    A full flush resets the compressor after every MiB, so every full MiB compresses
    to the same bytes: one MiB is compressed once and its bytes repeated (~1 KB each).
    """
    chunk = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    steady = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(size, len(chunk))
    written, crc = 0, 0
    for k in range(full):
        data = first if k == 0 else steady
        out.write(data)
        written += len(data)
        crc = zlib.crc32(chunk, crc)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = tail.compress(bytes(rest)) + tail.flush() if full == 0 else comp.compress(bytes(rest)) + comp.flush()
    out.write(data)
    return written + len(data), zlib.crc32(bytes(rest), crc)


def write_zip(path: Path, members: dict[str, bytes | Zeros], declared: dict[str, int] | None = None) -> Path:
    """A deflated zip written by hand; ``declared`` overrides a member's recorded uncompressed size (a lie)."""
    declared = declared or {}
    central = []
    with path.open("wb") as out:
        for name, body in members.items():
            offset = out.tell()
            raw = name.encode()
            header = struct.Struct("<IHHHHHIIIHH")
            out.write(header.pack(0x04034B50, 20, 0, 8, 0, 0x21, 0, 0, 0, len(raw), 0) + raw)
            start = out.tell()
            if isinstance(body, Zeros):
                csize, crc = _deflate_zeros(body.size, out)
                size = body.size
            else:
                comp = zlib.compressobj(6, zlib.DEFLATED, -15)
                data = comp.compress(body) + comp.flush()
                out.write(data)
                csize, crc, size = len(data), zlib.crc32(body), len(body)
            assert out.tell() - start == csize
            size = declared.get(name, size)
            end = out.tell()
            out.seek(offset)
            out.write(header.pack(0x04034B50, 20, 0, 8, 0, 0x21, crc, csize, size, len(raw), 0) + raw)
            out.seek(end)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, csize, size,
                                       len(raw), 0, 0, 0, 0, 0, offset) + raw)
        cd_offset = out.tell()
        for entry in central:
            out.write(entry)
        cd_size = out.tell() - cd_offset
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), cd_size, cd_offset, 0))
    return path


@pytest.fixture(scope="module", params=["torch", "tensorflow"])
def good(request, tmp_path_factory) -> Path:
    """A valid bundle of each backend: every hostile case below must hold for both."""
    path = tmp_path_factory.mktemp("good") / "wts.h5.zip"
    cfg = ModelConfig(patch_size=32, base_width=4)
    if request.param == "torch":
        torch.manual_seed(0)
        save_bundle(PtychoPINN(cfg, synthetic_probe(32), 3.5), path, config={"max_epochs": 1})
    else:
        from fly64_train.backends.tensorflow.bundle import save_bundle as save_keras_bundle
        from fly64_train.backends.tensorflow.model import PtychoPINN as KerasPINN

        save_keras_bundle(KerasPINN(cfg, synthetic_probe(32), 3.5), path, config={"max_epochs": 1})
    return path


def _parts(path: Path) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return json.loads(members["manifest.json"]), members


def _rebuilt(good: Path, out: Path, edit=None, replace: dict[str, bytes | Zeros] | None = None,
             extra: dict[str, bytes] | None = None, declared: dict[str, int] | None = None) -> Path:
    manifest, members = _parts(good)
    if edit:
        edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    members.update(replace or {})
    members.update(extra or {})
    return write_zip(out, members, declared)


def _cnn_file(good: Path) -> str:
    manifest, _ = _parts(good)
    return next(m["file"] for m in manifest["models"] if m["name"] == "diffraction_to_obj")


def test_the_hand_written_zip_is_a_valid_bundle(good, tmp_path):
    # The byte-level writer itself is honest: the same members re-packed load like the original.
    copy = _rebuilt(good, tmp_path / "copy.zip")
    x = torch.rand(2, 1, 32, 32).numpy()
    assert (load_bundle(copy).predict_object(x) == load_bundle(good).predict_object(x)).all()


# Peak RSS of the loading process itself. Linux carries a forked parent's high-water mark into
# getrusage's ru_maxrss across exec (a pytest worker holding torch starts the child at ~300 MB),
# so the child's own address space's VmHWM is read where /proc exists; getrusage elsewhere.
_BOMB_SCRIPT = textwrap.dedent("""
    import resource, sys
    from fly64_train import BundleError, load_bundle
    try:
        load_bundle(sys.argv[1])
        print("LOADED")
    except BundleError as exc:
        print("REFUSED", exc)
    try:
        with open("/proc/self/status") as fh:
            peak_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except OSError:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("MAXRSS_KB", peak_kb)
""")


@pytest.mark.parametrize("case", ["declared-size-differs-from-manifest", "manifest-agrees-but-over-the-cap"])
def test_a_zip_bomb_member_is_refused_before_it_is_decompressed(good, tmp_path, case):
    cnn = _cnn_file(good)

    def claim_a_gib(doc):
        for entry in doc["models"]:
            if entry["file"] == cnn:
                entry["size_bytes"] = GIB

    bomb = _rebuilt(good, tmp_path / "bomb.zip", edit=claim_a_gib if case.startswith("manifest") else None,
                    replace={cnn: Zeros(GIB)})
    assert bomb.stat().st_size < 3 << 20  # ~1 MB on disk, 1 GiB inflated
    run = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(bomb)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    refused = next(line for line in run.stdout.splitlines() if line.startswith(("REFUSED", "LOADED")))
    assert refused.startswith("REFUSED") and str(bomb) in refused and cnn in refused
    assert "1073741824" in refused  # the declared size, read from the header, is what gave it away
    rss_mb = int(run.stdout.split("MAXRSS_KB")[1].split()[0]) / 1024
    assert rss_mb < RSS_LIMIT_MB, f"peak RSS {rss_mb:.0f} MB"


def test_a_corrupt_deflate_stream_is_a_bundle_error_naming_file_and_member(good, tmp_path):
    cnn = _cnn_file(good)
    path = _rebuilt(good, tmp_path / "corrupt.zip")
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(cnn)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(cnn.encode())
    # 0xFF opens a deflate block of the reserved type 3: zlib.error "invalid block type".
    data[start:start + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"corrupt\.zip: .*{cnn}") as err:
        load_bundle(path)
    assert "\n" not in str(err.value)


def test_a_header_that_understates_its_member_cannot_inflate_past_it(good, tmp_path):
    # The header and the manifest both say a few KB; the deflate stream holds 64 MiB.
    manifest, members = _parts(good)
    cnn = _cnn_file(good)
    size = len(members[cnn])
    path = _rebuilt(good, tmp_path / "liar.zip", replace={cnn: Zeros(64 << 20)}, declared={cnn: size})
    with pytest.raises(BundleError, match=rf"liar\.zip: .*{cnn}"):
        load_bundle(path)


def test_expected_sha256_is_checked_before_anything_else(good, tmp_path):
    from fly64_manifest import sha256_file

    digest, _ = sha256_file(good)
    assert load_bundle(good, expected_sha256=digest).patch_size == 32
    with pytest.raises(BundleError, match=r"wts\.h5\.zip: sha256 [0-9a-f]{64} does not match the expected"):
        load_bundle(good, expected_sha256="0" * 64)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_bundle_is_a_bundle_error(good, tmp_path, keep):
    data = good.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BundleError, match=r"cut\.zip: "):
        load_bundle(cut)


def test_a_member_named_like_a_path_outside_is_refused_and_never_written(good, tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    path = _rebuilt(good, work / "escape.zip", extra={"../../x": b"payload"})
    with pytest.raises(BundleError, match=r"escape\.zip: .*'\.\./\.\./x'"):
        load_bundle(path)
    assert not (tmp_path / "x").exists() and sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "escape.zip"]


def test_a_manifest_pointing_a_model_outside_the_bundle_is_refused(good, tmp_path):
    cnn = _cnn_file(good)

    def escape(doc):
        for entry in doc["models"]:
            if entry["file"] == cnn:
                entry["file"] = "../../" + cnn

    _, members = _parts(good)
    path = _rebuilt(good, tmp_path / "up.zip", edit=escape, extra={"../../" + cnn: members[cnn]})
    with pytest.raises(BundleError, match=r"up\.zip: "):
        load_bundle(path)


# --- issue 20 section 4: a bundle's configuration and tensors are untrusted input ---------------------------


def _resealed(good: Path, out: Path, edit=None, replace: dict[str, bytes] | None = None, text=None) -> Path:
    """``good`` with its manifest edited and members replaced, every member's sha256 and size re-sealed
    in the manifest as an attacker with write access would do; ``text`` edits the manifest's JSON text."""
    import hashlib

    manifest, members = _parts(good)
    if edit:
        edit(manifest)
    members.update(replace or {})
    for entry in manifest["models"]:
        data = members[entry["file"]]
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    raw = json.dumps(manifest)
    members["manifest.json"] = (text(raw) if text else raw).encode()
    return write_zip(out, members)


def _model_config(**values):
    return lambda doc: doc["model_config"].update(values)


def _config(**values):
    return lambda doc: doc["config"].update(values)


def test_a_bundle_recording_the_torch_options_in_the_older_flat_layout_still_loads(good, tmp_path):
    from fly64_train.bundle import read_manifest
    from fly64_train.training.recorded import recorded_configs
    from fly64_train.training.torch_options import TorchOptions

    flat = {"max_epochs": 1, "accelerator": "gpu", "devices": 1, "strategy": "auto", "precision": "32-true",
            "num_workers": 2, "deterministic": True}
    path = _resealed(good, tmp_path / "flat.zip", lambda doc: doc.update(config=flat))
    load_bundle(path, device="cpu")
    train = recorded_configs(read_manifest(path)).train
    assert train.torch == TorchOptions(accelerator="gpu", devices=1, num_workers=2)
    assert train.deterministic and train.max_epochs == 1


@pytest.mark.parametrize(("edit", "key"), [
    (_model_config(base_width="8"), "model_config.base_width"),
    (_model_config(base_width=1.5), "model_config.base_width"),
    (_model_config(base_width=True), "model_config.base_width"),
    (_model_config(depth=1e12), "model_config.depth"),
    (_model_config(depth=10**12), "model_config.depth"),
    (_model_config(input_fraction=0.0), "model_config.input_fraction"),
    (_model_config(input_fraction=0.015625), "model_config.input_fraction"),  # a 0-pixel crop: was 1/0
    (_model_config(amplitude_max=-2.0), "model_config.amplitude_max"),
    (_model_config(batch_norm="yes"), "model_config.batch_norm"),
    (_model_config(merge_weights="gaussian"), "model_config.merge_weights"),
    (_model_config(gridsize=10**9), "model_config.gridsize"),
    (_config(grouping_seed=-5), "config.grouping_seed"),
    (_config(neighbor_count=2.5), "config.neighbor_count"),
    (_config(neighbor_count=10**18), "config.neighbor_count"),
    (_config(lr="fast"), "config.lr"),
    (_config(model={"base_width": "8"}), "config.model.base_width"),
    (_config(torch={"precision": "16"}), "config.torch.precision"),
    (_config(precision="16"), "config.torch.precision"),  # the older flat layout, checked alike
    (_config(torch={"accelerator": "tpu"}), "config.torch.accelerator"),
    (_config(accelerator="cpu", torch={"accelerator": "cuda"}), "config.torch.accelerator"),
    (lambda doc: doc.update(N=64), "N"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_every_recorded_key_is_type_and_range_checked(good, tmp_path, edit, key):
    path = _resealed(good, tmp_path / "keys.zip", edit)
    with pytest.raises(BundleError) as err:
        load_bundle(path, device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: manifest.json: {key}") and "\n" not in message, message


_WIDE_SCRIPT = textwrap.dedent("""
    import sys
    from fly64_train import BundleError, load_bundle
    try:
        load_bundle(sys.argv[1], device="cpu")
        print("LOADED")
    except BundleError as exc:
        print("REFUSED", exc)
    with open("/proc/self/status") as fh:
        print("MAXRSS_KB", next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_resealed_width_1000_config_is_refused_before_the_model_is_built(good, tmp_path):
    # The weights are width 4; built first, a width-1000 network takes several GB (4.7 GB in the issue).
    path = _resealed(good, tmp_path / "wide.zip", _model_config(base_width=1000))
    run = subprocess.run([sys.executable, "-c", _WIDE_SCRIPT, str(path)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    verdict = next(line for line in run.stdout.splitlines() if line.startswith(("REFUSED", "LOADED")))
    assert verdict.startswith(f"REFUSED {path}: ") and "weights do not fit" in verdict
    assert _cnn_file(good) in verdict
    rss_mb = int(run.stdout.split("MAXRSS_KB")[1].split()[0]) / 1024
    assert rss_mb < 1500, f"peak RSS {rss_mb:.0f} MB: the width-1000 model was built"


def _torch_only(good: Path) -> None:
    if _parts(good)[0]["backend"] != "torch":
        pytest.skip("safetensors members: torch bundles")


def _safetensors_edit(good: Path, name: str, key: str, value: torch.Tensor) -> dict[str, bytes]:
    from safetensors.torch import load, save

    manifest, members = _parts(good)
    file = next(m["file"] for m in manifest["models"] if m["name"] == name)
    state = load(members[file])
    state[key] = value
    return {file: save(state)}


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float64])
def test_a_tensor_of_the_wrong_dtype_is_refused_from_the_header(good, tmp_path, dtype):
    _torch_only(good)
    from safetensors.torch import load

    manifest, members = _parts(good)
    cnn = _cnn_file(good)
    shape = load(members[cnn])["encoder.0.weight"].shape
    wrong = torch.ones(shape, dtype=dtype)
    path = _resealed(good, tmp_path / "dtype.zip",
                     replace=_safetensors_edit(good, "diffraction_to_obj", "encoder.0.weight", wrong))
    with pytest.raises(BundleError, match=rf"^{path}: .*{cnn}.*'encoder\.0\.weight' is (I64|BOOL|F64) .*needs F32"):
        load_bundle(path, device="cpu")


@pytest.mark.parametrize(("name", "key", "value", "complaint"), [
    ("forward_model", "intensity_scale", torch.tensor(float("nan")), "NaN or infinite"),
    ("forward_model", "intensity_scale", torch.tensor(-1.0), "the manifest's intensity_scale is 3.5"),
    ("forward_model", "intensity_scale", torch.tensor(7.0), "the manifest's intensity_scale is 3.5"),
    ("forward_model", "support", torch.full((32, 32), float("nan")), "NaN or infinite"),
    ("forward_model", "support", torch.ones(32, 32), "not the model's support mask"),
    ("forward_model", "probe", torch.zeros(32, 32, dtype=torch.complex64), "identically zero"),
    ("diffraction_to_obj", "input_scale", torch.tensor(float("inf")), "NaN or infinite"),
    ("diffraction_to_obj", "encoder.0.weight", None, "NaN or infinite"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_physics_buffers_and_weights_must_be_finite_and_equal_to_the_manifest(good, tmp_path, name, key, value,
                                                                               complaint):
    _torch_only(good)
    from safetensors.torch import load

    manifest, members = _parts(good)
    file = next(m["file"] for m in manifest["models"] if m["name"] == name)
    if value is None:  # one NaN weight among valid ones
        value = load(members[file])[key].clone()
        value.view(-1)[0] = float("nan")
    path = _resealed(good, tmp_path / "buffers.zip", replace=_safetensors_edit(good, name, key, value))
    with pytest.raises(BundleError) as err:
        load_bundle(path, device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: model file {file!r}: tensor {key!r}") and complaint in message, message


def test_a_torch_bundle_relabelled_as_format_1_gets_our_error_not_torch_advice(good, tmp_path):
    _torch_only(good)
    path = _resealed(good, tmp_path / "relabelled.zip", lambda doc: doc.update(format_version="1.0"))
    with pytest.raises(BundleError) as err:
        load_bundle(path, device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: cannot load {_cnn_file(good)!r}") and "weights_only" not in message


def test_hdf5_external_storage_is_refused_naming_the_bundle(good, tmp_path):
    if _parts(good)[0]["backend"] != "tensorflow":
        pytest.skip("HDF5 members: TensorFlow bundles")
    import h5py

    cnn = _cnn_file(good)
    _, members = _parts(good)
    original, forged = tmp_path / "original.weights.h5", tmp_path / "forged.weights.h5"
    original.write_bytes(members[cnn])
    outside = tmp_path / "outside.bin"
    with h5py.File(original, "r") as src, h5py.File(forged, "w") as dst:
        datasets = []
        src.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        victim = next(d for d in datasets if d.endswith("vars/0") and src[d].ndim == 4)
        for name in datasets:
            data = np.asarray(src[name])
            if name == victim:
                outside.write_bytes(data.tobytes())
                dst.create_dataset(name, shape=data.shape, dtype=data.dtype, external=[(str(outside), 0, data.nbytes)])
            else:
                dst.create_dataset(name, data=data)
    path = _resealed(good, tmp_path / "external.zip", replace={cnn: forged.read_bytes()})
    with pytest.raises(BundleError) as err:
        load_bundle(path, device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: model file {cnn!r}: dataset ") and "external storage" in message, message


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True),
                          st.text(max_size=8))
_JSON_VALUES = st.one_of(_JSON_SCALARS, st.lists(_JSON_SCALARS, max_size=3),
                         st.dictionaries(st.text(max_size=4), _JSON_SCALARS, max_size=3))


@settings(max_examples=500, deadline=None)
@given(section=st.sampled_from(["model_config", "config"]), data=st.data(), value=_JSON_VALUES)
def test_any_json_value_at_any_recorded_key_is_accepted_typed_or_refused_naming_the_key(section, data, value):
    # The property behind the cases above: whatever JSON sits at a known key, the one checker per config
    # class either accepts a value of the field's type or raises one ValueError line naming the key.
    from dataclasses import fields, replace

    from fly64_train.bundle import BundleManifest
    from fly64_train.training.config import TrainConfig
    from fly64_train.training.recorded import recorded_configs
    from fly64_train.training.torch_options import FLAT_TORCH_KEYS

    names = [f.name for f in fields(ModelConfig if section == "model_config" else TrainConfig)]
    if section == "config":
        names += FLAT_TORCH_KEYS  # the older flat layout of the torch options (what old bundles hold)
    key = data.draw(st.sampled_from([name for name in names if name not in ("job_dir", "model", "torch")]))
    nested = section == "config" and key in FLAT_TORCH_KEYS
    model = ModelConfig(patch_size=32, base_width=4).to_dict()
    manifest = BundleManifest(format_version="2.0", backend="torch", backend_version=None, models=(), patch_size=32,
                              gridsize=1, intensity_scale=3.5, model_config=model, config={}, provenance={})
    manifest = replace(manifest, **{section: {**getattr(manifest, section), key: value}})
    try:
        recorded = recorded_configs(manifest)
    except ValueError as exc:
        where = f"{section}.torch.{key}" if nested else f"{section}.{key}"
        assert str(exc).startswith(f"manifest.json: {where}") or (key in ("patch_size", "gridsize")), exc
        assert "\n" not in str(exc)
        return
    owner = recorded.model if section == "model_config" else recorded.train.torch if nested else recorded.train
    accepted = getattr(owner, key)
    assert accepted is None or isinstance(accepted, (bool, int, float, str)), (key, value)
    if isinstance(accepted, float):
        assert math.isfinite(accepted)


@pytest.mark.parametrize("cfg", [ModelConfig(patch_size=32, base_width=4),
                                 ModelConfig(patch_size=32, gridsize=2, shared_encoder=False, convs_per_level=3,
                                             depth=2, input_fraction=1.0),
                                 ModelConfig(patch_size=64, depth=4, input_fraction=1.0, base_width=3)])
def test_the_size_bound_counts_exactly_the_convolution_kernels_of_both_backends(cfg):
    # The refusal before building relies on conv_kernel_elements(): pinned to the real layers of each backend.
    from fly64_train.backends.torch.model import ObjectCNN

    cfg.check()
    torch_kernels = sum(m.weight.numel() for m in ObjectCNN(cfg).modules() if isinstance(m, torch.nn.Conv2d))
    assert torch_kernels == cfg.conv_kernel_elements()
    pytest.importorskip("tensorflow")
    import keras

    from fly64_train.backends.tensorflow.model import ObjectCNN as KerasCNN

    layers = [layer for layer in KerasCNN(cfg)._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    assert sum(int(np.prod(layer.kernel.shape)) for layer in layers) == cfg.conv_kernel_elements()


def _h5_edit(good: Path, name: str, dataset: str, value) -> dict[str, bytes]:
    """The bundle's ``name`` weights file with one dataset's values replaced (same shape and dtype)."""
    import io

    import h5py

    manifest, members = _parts(good)
    file = next(m["file"] for m in manifest["models"] if m["name"] == name)
    buffer = io.BytesIO(members[file])
    with h5py.File(buffer, "r+") as fh:
        fh[dataset][...] = value
    return {file: buffer.getvalue()}


@pytest.mark.parametrize(("name", "dataset", "value", "complaint"), [
    ("forward_model", "vars/1", 7.0, "the manifest's intensity_scale is 3.5"),  # the intensity scale
    ("forward_model", "vars/1", float("nan"), "NaN or infinite"),
    ("forward_model", "vars/0", 0.0, "identically zero"),                        # the probe's planes
])
def test_keras_physics_values_must_be_finite_and_equal_to_the_manifest(good, tmp_path, name, dataset, value,
                                                                       complaint):
    if _parts(good)[0]["backend"] != "tensorflow":
        pytest.skip("HDF5 members: TensorFlow bundles")
    path = _resealed(good, tmp_path / "keras_values.zip", replace=_h5_edit(good, name, dataset, value))
    with pytest.raises(BundleError) as err:
        load_bundle(path, device="cpu")
    message = str(err.value)
    assert message.startswith(f"{path}: model file 'models/{name}.weights.h5': ") and complaint in message, message
