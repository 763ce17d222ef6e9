"""Three-channel (track, ECAL, HCAL) images of quark and gluon jets, from the toy shower of
:mod:`.showers`.

An event is a gluon jet (probability ``gluon_fraction``) or a quark jet, pT 500–1000 GeV, seen
in a window |η|, |φ| < WINDOW around the jet axis of ``size`` × ``size`` pixels (row = η,
column = φ), each channel at its own granularity:

* track: the pT of the tracks summed per pixel (full tracker resolution);
* ECAL: each crystal's energy shared among the pixels it overlaps, by area;
* HCAL: each tower's energy spread evenly over the pixels whose centres it holds, so the
  channel is constant over a tower's pixels.

Event columns: ``is_gluon``, then the pixels ``track_0_0 … hcal_{size−1}_{size−1}`` (GeV, in C
order of (channel, η row, φ column)). Features ``(3, size, size)``, channel first:
log1p(pixel / SCALES[channel]); pixels below READOUT_THRESHOLDS are 0 in simulated and in
generated images alike (zero suppression), so empty pixels are exactly 0 both ways. Conditions: the one-hot
``is_quark, is_gluon``.
"""
from __future__ import annotations

import numpy as np

from bayesgen.core.errors import ConfigError
from bayesgen.core.hooks import hookimpl
from bayesgen.core.process import Binning, DetectorView, Process
from bayesgen.plugins.processes import showers
from bayesgen.plugins.processes.showers import cell_centre, cell_index

CHANNELS = ("track", "ecal", "hcal")
SIZES = (32, 64)                      #: allowed image sizes
WINDOW = 0.8                          #: half-width of the image in η and φ
SCALES = (0.5, 0.1, 0.1)              #: GeV per channel, about a pixel's smallest deposit (track
#: threshold, ECAL crystal threshold, an HCAL tower threshold shared by a few pixels): log1p
#: is then logarithmic over the deposits' whole range and linear near 0
EMPTY_BELOW = 1e-3                    #: a pixel below this (GeV) counts as empty
READOUT_THRESHOLDS = (0.4, 0.02, 0.1)  #: GeV per channel: pixels below are read out as 0 (zero
#: suppression), in the simulation and in generated images alike, so a generator's faint
#: residue in empty pixels is not mistaken for a deposit (tracks and towers lie above anyway)


def zero_suppressed(images: np.ndarray) -> np.ndarray:
    """``images (n, 3, H, W)`` with every pixel below its channel's READOUT_THRESHOLDS set to 0."""
    return np.where(images >= np.reshape(READOUT_THRESHOLDS, (1, 3, 1, 1)), images, 0.0)


def _overlaps(centre: np.ndarray, width: float, pixel: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices ``(m, 2)`` and overlap fractions ``(m, 2)`` along one axis of cells
    ``centre ± width/2`` no wider than a pixel."""
    low = centre - width / 2
    first = cell_index(low, pixel, size)
    fraction = np.clip((cell_centre(first, pixel, size) + pixel / 2 - low) / width, 0.0, 1.0)
    return np.stack([first, first + 1], axis=1), np.stack([fraction, 1.0 - fraction], axis=1)


class JetImages(Process):
    """Track/ECAL/HCAL images of quark and gluon jets (toy shower + detector)."""

    name = "jet_images"
    description = "3-channel (track, ECAL, HCAL) images of quark vs gluon jets (toy shower, class condition)"
    condition_names = ("is_quark", "is_gluon")
    channel_axis = 0
    sqrt_s = 2 * showers.BEAM_ENERGY
    #: a U-Net sized for a CPU (attention at 8 × 8 only): about 0.2 s a step with one thread
    training_defaults = {"backbone": "unet", "batch_size": 32, "events": 20_000, "steps": 4000,
                         "backbone_options": {"unet": {"channels": 16, "channel_mults": [1, 2, 2], "embed_dim": 64,
                                                       "groups": 8, "attention_below": 8}},
                         "sampler_options": {"ddpm": {"schedule": "cosine", "prediction": "v"}}}

    def __init__(self, size: int = 32, gluon_fraction: float = 0.5):
        if size not in SIZES:
            raise ConfigError(f"size must be one of {SIZES}, got {size!r}")
        if not 0.0 <= gluon_fraction <= 1.0:
            raise ConfigError(f"gluon_fraction must be in [0, 1], got {gluon_fraction}")
        self.size, self.gluon_fraction = int(size), float(gluon_fraction)
        self.pixel = 2 * WINDOW / self.size
        pixels = [f"{c}_{i}_{j}" for c in CHANNELS for i in range(self.size) for j in range(self.size)]
        self.quantities = ("is_gluon", *pixels)
        self.feature_names = tuple(f"log1p_{p}" for p in pixels)
        self.feature_shape = (len(CHANNELS), self.size, self.size)
        self.binnings = {
            "track_sum": Binning(0.0, 1000.0, 50, r"$\sum p_T^\mathrm{track}$ [GeV]"),
            "ecal_sum": Binning(0.0, 800.0, 40, r"$\sum E^\mathrm{ECAL}$ [GeV]"),
            "hcal_sum": Binning(0.0, 800.0, 40, r"$\sum E^\mathrm{HCAL}$ [GeV]"),
            "n_nonempty": Binning(0.0, 0.15 * self.size ** 2, 50, r"$n_\mathrm{pixels}$"),
            "width": Binning(0.0, 0.25, 25, r"width $\sum I\,\Delta R / \sum I$"),
        }

    # --- Monte Carlo -------------------------------------------------------------------------
    def render(self, particles: showers.Particles, n: int, rng: np.random.Generator) -> np.ndarray:
        """Images ``(n, 3, size, size)`` of the detector response to ``particles`` of ``n`` jets."""
        s = self.size
        fraction = showers.ecal_fractions(particles, rng)

        def grid(event, i, j, e) -> np.ndarray:
            inside = (i >= 0) & (i < s) & (j >= 0) & (j < s)
            return np.bincount(((event * s + i) * s + j)[inside], e[inside], n * s * s).reshape(n, s, s)

        trk = showers.tracks(particles, rng)
        track = grid(trk.event, cell_index(trk.eta, self.pixel, s), cell_index(trk.phi, self.pixel, s), trk.e)
        crystals = showers.ecal(particles, fraction, rng)
        i, fi = _overlaps(crystals.eta, showers.CRYSTAL, self.pixel, s)
        j, fj = _overlaps(crystals.phi, showers.CRYSTAL, self.pixel, s)
        shape = (len(crystals.e), 2, 2)
        ecal = grid(np.broadcast_to(crystals.event[:, None, None], shape).ravel(),
                    np.broadcast_to(i[:, :, None], shape).ravel(), np.broadcast_to(j[:, None, :], shape).ravel(),
                    (crystals.e[:, None, None] * fi[:, :, None] * fj[:, None, :]).ravel())
        towers = np.zeros((n, showers.N_TOWERS, showers.N_TOWERS))
        hits = showers.hcal(particles, fraction, rng)
        towers[hits.event, hits.ieta, hits.iphi] = hits.e
        tower = cell_index(cell_centre(np.arange(s), self.pixel, s), showers.TOWER, showers.N_TOWERS)
        count = np.bincount(tower, minlength=showers.N_TOWERS)[tower]
        hcal = towers[:, tower[:, None], tower[None, :]] / (count[:, None] * count[None, :])
        return zero_suppressed(np.stack([track, ecal, hcal], axis=1))

    def simulate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` events ``(n, 1 + 3 size²)``."""
        gluon = rng.random(n) < self.gluon_fraction
        particles = showers.jets(np.where(gluon, showers.GLUON, showers.QUARK), rng)
        return np.concatenate([gluon[:, None], self.render(particles, n, rng).reshape(n, -1)], axis=1)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Exactly ``n`` events, reproducible for ``(n, seed)``."""
        return showers.simulate_in_chunks(self.simulate, n, seed, len(self.quantities))

    def support(self, events: np.ndarray, selection: bool = True) -> np.ndarray:
        """``is_gluon`` 0 or 1, every pixel finite and ≥ 0, the track pT and the calorimeter
        (ECAL + HCAL) energy each within the beam energy; with ``selection`` also zero-suppressed
        (each pixel 0 or at least its channel's READOUT_THRESHOLDS)."""
        ev = np.asarray(events, dtype=np.float64)
        images = self.images(ev)
        with np.errstate(invalid="ignore"):
            ok = np.isin(ev[:, 0], (0.0, 1.0)) & (np.isfinite(images) & (images >= 0)).all(axis=(1, 2, 3))
            sums = images.sum(axis=(2, 3))
            ok &= (sums[:, 0] <= showers.BEAM_ENERGY) & (sums[:, 1] + sums[:, 2] <= showers.BEAM_ENERGY)
            if selection:
                ok &= (zero_suppressed(images) == images).all(axis=(1, 2, 3))
        return ok

    def images(self, events: np.ndarray) -> np.ndarray:
        """Event array → images ``(n, 3, size, size)``."""
        return np.asarray(events, dtype=np.float64)[:, 1:].reshape(-1, *self.feature_shape)

    # --- network representation --------------------------------------------------------------
    def conditions(self, events: np.ndarray) -> np.ndarray:
        """One-hot ``(is_quark, is_gluon)``."""
        gluon = np.asarray(events, dtype=np.float64)[:, :1]
        return np.concatenate([1.0 - gluon, gluon], axis=1)

    def to_features(self, events: np.ndarray) -> np.ndarray:
        """``(n, 1 + 3 size²)`` → ``(n, 3 size²)``."""
        images = self.images(events)
        return np.log1p(images / np.reshape(SCALES, (1, 3, 1, 1))).reshape(len(images), -1)

    def from_features(self, features: np.ndarray, rng: np.random.Generator,
                      conditions: np.ndarray | None = None) -> np.ndarray:
        """``(n, 3 size²)`` and the conditions → ``(n, 1 + 3 size²)``; pixels below the readout
        thresholds (negative ones included) become 0."""
        f = np.asarray(features, dtype=np.float64).reshape(-1, *self.feature_shape)
        images = zero_suppressed(np.expm1(f) * np.reshape(SCALES, (1, 3, 1, 1)))
        conditions = np.asarray(conditions, dtype=np.float64)
        gluon = (conditions[:, 1] > conditions[:, 0]).astype(np.float64)
        return np.concatenate([gluon[:, None], images.reshape(len(images), -1)], axis=1)

    # --- validation --------------------------------------------------------------------------
    def observables(self, events: np.ndarray) -> dict[str, np.ndarray]:
        """Per-channel sums, ``n_nonempty`` (pixels with any channel ≥ EMPTY_BELOW) and ``width``
        (ΔR of the pixel centres to the axis, weighted by the summed channels; 0 when empty)."""
        images = self.images(events)
        sums = images.sum(axis=(2, 3))
        centre = cell_centre(np.arange(self.size), self.pixel, self.size)
        distance = np.hypot(centre[:, None], centre[None, :])
        total = images.sum(axis=1)
        norm = total.sum(axis=(1, 2))
        width = np.divide((total * distance).sum(axis=(1, 2)), norm, out=np.zeros_like(norm), where=norm > 0)
        return {**{f"{c}_sum": sums[:, k] for k, c in enumerate(CHANNELS)},
                "n_nonempty": (images >= EMPTY_BELOW).any(axis=1).sum(axis=(1, 2)).astype(np.float64),
                "width": width}

    def detector_view(self, events: np.ndarray) -> DetectorView:
        """The events as images ``(n, 3, size, size)``, channels track, ECAL, HCAL."""
        return DetectorView("image", self.images(events), CHANNELS, EMPTY_BELOW)


@hookimpl
def bayesgen_processes():
    return {"jet_images": JetImages}
