"""The base sample: an embedded synthetic fly-like object, its probe and scan.

Nothing is downloaded: the default sample is generated deterministically from
a seed. A user may instead supply ``--base-npz`` holding ``objectGuess``,
``probeGuess`` and optionally ``xcoords``/``ycoords``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from fly64_data.contract import ContractError
from fly64_data.npz_reader import NpzError, npz_headers, read_npz

EMBEDDED_SOURCE = "embedded:fly64-synthetic-v1"
DEFAULT_OBJECT_SIZE = 1152
DEFAULT_SCAN_STEP = 20.0
SCAN_JITTER = 2.0  # uniform +-px jitter of each raster position
SCAN_MARGIN = 4  # px kept between the outermost patch and the object edge


@dataclass(frozen=True)
class BaseSample:
    """A complex object, a probe and the scan positions (patch centres)."""

    object: np.ndarray  # (H, W) complex64
    probe: np.ndarray  # (N, N) complex64
    xcoords: np.ndarray  # (n,) float64, column
    ycoords: np.ndarray  # (n,) float64, row
    source: str

    @property
    def patch_size(self) -> int:
        return int(self.probe.shape[0])

    def sha256(self) -> str:
        """Digest of the sample's arrays (what the simulation actually consumed)."""
        digest = hashlib.sha256()
        for arr in (self.object, self.probe, self.xcoords, self.ycoords):
            digest.update(str(arr.dtype).encode() + str(arr.shape).encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float,
             angle: float, edge: float = 2.0) -> np.ndarray:
    """Soft-edged filled ellipse in [0, 1]."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * c + (yy - cy) * s) / rx
    v = (-(xx - cx) * s + (yy - cy) * c) / ry
    r = np.sqrt(u**2 + v**2)
    return 0.5 * (1.0 - np.tanh((r - 1.0) * min(rx, ry) / edge))


def synthetic_object(size: int = DEFAULT_OBJECT_SIZE, seed: int = 42) -> np.ndarray:
    """A deterministic fly-like complex object.

    A body (head, thorax, segmented abdomen) and two veined wings drawn as soft
    shapes, textured with band-limited noise at three scales, then mapped to a
    weak-phase, weakly absorbing object: amplitude in about [0.5, 1], phase
    within about +-1 rad.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = size / 2.0
    scale = size / 960.0
    body = np.zeros((size, size))
    body = np.maximum(body, _ellipse(yy, xx, c - 190 * scale, c, 70 * scale, 85 * scale, 0.0))  # head
    body = np.maximum(body, _ellipse(yy, xx, c - 40 * scale, c, 110 * scale, 95 * scale, 0.0))  # thorax
    for k in range(5):  # abdomen segments
        cy = c + (110 + 55 * k) * scale
        body = np.maximum(body, 0.85 * _ellipse(yy, xx, cy, c, 34 * scale, (95 - 10 * k) * scale, 0.0))
    wings = np.zeros((size, size))
    veins = np.zeros((size, size))
    for side in (-1, 1):
        cx, cy, ang = c + side * 250 * scale, c + 40 * scale, side * 0.45
        wing = _ellipse(yy, xx, cy, cx, 300 * scale, 140 * scale, ang, edge=3.0)
        wings = np.maximum(wings, wing)
        for offset in np.linspace(-100, 100, 5) * scale:  # veins radiating along the wing
            ca, sa = np.cos(ang), np.sin(ang)
            u = (xx - cx) * ca + (yy - cy) * sa
            dist = np.abs(u - offset - 0.15 * ((yy - cy) * ca - (xx - cx) * sa))
            veins = np.maximum(veins, wing * np.exp(-0.5 * (dist / (2.5 * scale)) ** 2))
    texture = (0.5 * _smooth_noise(rng, (size, size), 2.0)
               + 0.3 * _smooth_noise(rng, (size, size), 6.0)
               + 0.2 * _smooth_noise(rng, (size, size), 20.0))
    bristles = ndimage.gaussian_filter((rng.random((size, size)) > 0.9985).astype(float), 1.5)
    bristles /= bristles.max()
    thickness = 0.65 * body + 0.25 * wings + 0.35 * veins + 0.4 * bristles * body
    thickness += 0.12 * texture * (0.3 + body + wings)
    thickness = ndimage.gaussian_filter(np.clip(thickness, 0.0, 1.2), 1.0) / 1.2
    amplitude = 1.0 - 0.5 * thickness
    phase = 1.9 * (thickness - 0.5)
    phase = np.clip(phase, -1.0, 1.0)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def synthetic_probe(n: int = 128) -> np.ndarray:
    """A focused-beam probe: soft circular aperture (radius ~0.19 N), defocus, coma, astigmatism.

    The coma term makes the probe not centro-symmetric, which removes the
    twin-image ambiguity a single-pattern model could otherwise fall into.
    Nearly all the intensity lies within the central N/2 support.
    """
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) - n // 2
    r = np.hypot(yy, xx)
    theta = np.arctan2(yy, xx)
    r0 = 0.19 * n
    amplitude = 0.5 * (1.0 - np.tanh((r - r0) / (0.025 * n)))
    rho = r / r0
    # Defocus spreads the far field over the detector (as a real focused beam
    # slightly out of focus does); coma and astigmatism break the symmetry.
    phase = 8.0 * rho**2 + 2.0 * rho**3 * np.cos(theta) + 1.0 * rho**2 * np.cos(2 * theta)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def raster_scan(object_shape: tuple[int, int], n: int, step: float, seed: int,
                jitter: float = SCAN_JITTER) -> tuple[np.ndarray, np.ndarray]:
    """Jittered raster of patch centres that keeps every (N+1)-window inside the object."""
    if step <= 0:
        raise ValueError(f"scan step must be positive, got {step}")
    lo = n / 2 + SCAN_MARGIN + jitter
    hi_y = object_shape[0] - n / 2 - SCAN_MARGIN - jitter - 1
    hi_x = object_shape[1] - n / 2 - SCAN_MARGIN - jitter - 1
    if hi_y < lo or hi_x < lo:
        raise ValueError(f"object {object_shape} is too small for patch size {n}")
    ys = np.arange(lo, hi_y + 1e-9, step)
    xs = np.arange(lo, hi_x + 1e-9, step)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    rng = np.random.default_rng(seed)
    jit = rng.uniform(-jitter, jitter, size=(2, gy.size))
    return gx.ravel() + jit[1], gy.ravel() + jit[0]


def default_sample(n: int = 128, object_size: int = DEFAULT_OBJECT_SIZE,
                   scan_step: float = DEFAULT_SCAN_STEP, seed: int = 42) -> BaseSample:
    """The embedded fly64 base sample."""
    obj = synthetic_object(object_size, seed)
    probe = synthetic_probe(n)
    x, y = raster_scan(obj.shape, n, scan_step, seed)
    return BaseSample(obj, probe, x, y, EMBEDDED_SOURCE)


def load_base_npz(path: str | os.PathLike, n: int | None = None,
                  scan_step: float = DEFAULT_SCAN_STEP, seed: int = 42) -> BaseSample:
    """Read a user-supplied base sample; raise ContractError with a one-line reason."""
    path = Path(path)
    try:
        present = npz_headers(path)
        for key in ("objectGuess", "probeGuess"):
            if key not in present:
                raise NpzError(f"{path}: missing key {key!r} (a base sample needs objectGuess and probeGuess)")
        wanted = ["objectGuess", "probeGuess", *(k for k in ("xcoords", "ycoords") if k in present)]
        arrays = read_npz(path, keys=wanted)
    except NpzError as exc:
        raise ContractError(str(exc)) from None
    obj, probe = arrays["objectGuess"], arrays["probeGuess"]
    coords = [arrays[k] for k in ("xcoords", "ycoords") if k in arrays]

    def bad(msg: str) -> ContractError:
        return ContractError(f"{path}: {msg}")

    if obj.ndim != 2 or not np.issubdtype(obj.dtype, np.number):
        raise bad(f"key 'objectGuess': expected a 2-D numeric array, got {obj.dtype} {obj.shape}")
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1] or not np.issubdtype(probe.dtype, np.number):
        raise bad(f"key 'probeGuess': expected a square 2-D numeric array (N, N), got {probe.dtype} {probe.shape}")
    if n is not None and probe.shape != (n, n):
        raise bad(f"key 'probeGuess': expected shape ({n}, {n}) for patch size {n}, got {probe.shape}")
    for key, arr in (("objectGuess", obj), ("probeGuess", probe)):
        if not np.all(np.isfinite(arr)):
            raise bad(f"key {key!r}: contains non-finite values (NaN or inf)")
    if not np.any(probe):
        raise bad("key 'probeGuess': probe is identically zero")
    if len(coords) == 1:
        raise bad("xcoords and ycoords must be given together")
    size = probe.shape[0]
    if coords:
        x, y = (c.astype(np.float64).ravel() for c in coords)
        if x.shape != y.shape or x.size == 0:
            raise bad(f"xcoords/ycoords: expected two equal non-empty 1-D arrays, got {x.shape} and {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise bad("xcoords/ycoords: contain non-finite values")
        lo = size // 2
        if (x.min() < lo or y.min() < lo or x.max() + size - lo > obj.shape[1] - 1
                or y.max() + size - lo > obj.shape[0] - 1):
            raise bad(f"xcoords/ycoords: positions put patches outside the {obj.shape} object")
    else:
        x, y = raster_scan(obj.shape, size, scan_step, seed)
    return BaseSample(obj.astype(np.complex64), probe.astype(np.complex64), x, y, str(path))


def save_base_npz(sample: BaseSample, path: str | os.PathLike) -> Path:
    """Write a base sample NPZ (no pickle) that ``load_base_npz`` reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    try:
        np.savez(tmp, objectGuess=sample.object, probeGuess=sample.probe,
                 xcoords=sample.xcoords, ycoords=sample.ycoords)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
