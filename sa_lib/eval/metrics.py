"""Image-quality metrics for exemplar-based colorization.

Every metric takes RGB images as numpy arrays of shape (H, W, 3), either float
in [0, 1] or uint8 (divided by 255). Anything else raises ``ValueError``.
Lab conversions use ``skimage.color.rgb2lab`` (sRGB, D65).

Conventions (fixed; other modules and the paper tables rely on them):

* ``his`` -- histogram intersection similarity of Yin et al. 2021 (public code,
  ``util.calc_hist``): ab / 110 clipped to [-1, 1]; 21 x 21 bin centres
  ``linspace(-1, 1, 21)`` (spacing 0.1); separable triangular soft binning
  ``max(0.1 - |x - c|, 0) * 10`` per axis; histogram normalised to sum 1;
  HIS = sum of element-wise minima. 1 for identical ab content, 0 for disjoint.
* ``delta_his`` -- ``|mean(HIS(pred, ref)) - mean(HIS(gt, ref))|`` over the same
  evaluation pairs (the paper's HIS_ref = 0.542 is the second mean on its pairs).
* ``ssim`` -- ``skimage.metrics.structural_similarity`` on RGB in [0, 1] with the
  Wang et al. 2004 setting: data_range=1, Gaussian window sigma=1.5,
  population covariance, averaged over channels.
* ``psnr_ab`` -- PSNR on the Lab a and b channels: MSE in Lab units over both
  channels and all pixels, peak value 110 (ab range about [-110, 110]);
  ``10 * log10(110**2 / MSE)``; identical images give ``inf``.
* ``ciede2000`` -- mean over pixels of ``skimage.color.deltaE_ciede2000``.
* ``colorfulness`` -- Hasler & Suesstrunk 2003 on RGB scaled to [0, 255], with
  population standard deviations; a gray image gives 0.
* ``lpips_distance`` / ``LPIPSMetric`` -- the ``lpips`` package, net='alex',
  version='0.1', NCHW inputs scaled to [-1, 1]. Its AlexNet backbone comes from
  torchvision's download cache; when it cannot be obtained the metric is
  unavailable (``lpips_available()`` is False and ``lpips_distance`` raises
  ``MetricUnavailable``). No other network is ever used under the LPIPS name.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..core import hub
from ..core.color import AB_SCALE  # ab normalisation of the HIS histogram and PSNR-ab peak value

__all__ = [
    "MetricUnavailable",
    "LPIPSMetric",
    "ab_histogram",
    "ciede2000",
    "colorfulness",
    "delta_his",
    "his",
    "histogram_intersection",
    "lpips_available",
    "lpips_distance",
    "psnr_ab",
    "ssim",
]

HIS_BINS = np.linspace(-1.0, 1.0, 21)
SSIM_MIN_SIDE = 11  # Gaussian window (sigma 1.5, truncate 3.5) is 11 x 11
_RANGE_TOL = 1e-6


class MetricUnavailable(RuntimeError):
    """A metric whose model weights cannot be obtained on this machine."""


def _as_rgb(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an RGB image and return it as float64 in [0, 1]."""
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (H, W, 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1] or uint8, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOL or hi > 1.0 + _RANGE_TOL:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return np.clip(arr, 0.0, 1.0)


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two RGB images that must have the same shape."""
    x, y = _as_rgb(a, "first image"), _as_rgb(b, "second image")
    if x.shape != y.shape:
        raise ValueError(f"images must have the same shape, got {x.shape} and {y.shape}")
    return x, y


# --------------------------------------------------------------------- HIS


def ab_histogram(img: np.ndarray) -> np.ndarray:
    """21 x 21 soft ab histogram (sums to 1) of an RGB image, as in Yin et al. 2021.

    Entry [i, j] is the mass near a = 110 * HIS_BINS[i], b = 110 * HIS_BINS[j].
    """
    ab = rgb2lab(_as_rgb(img))[..., 1:].reshape(-1, 2) / AB_SCALE  # (H W, 2) network-scale a*b*
    ab = np.clip(ab, -1.0, 1.0)
    # (N, 21) triangular weights per axis; the joint weight is their product.
    w_a = np.maximum(0.1 - np.abs(ab[:, :1] - HIS_BINS), 0.0) * 10.0
    w_b = np.maximum(0.1 - np.abs(ab[:, 1:] - HIS_BINS), 0.0) * 10.0
    hist = w_a.T @ w_b
    return hist / hist.sum()


def his(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection similarity of the ab histograms, in [0, 1].

    Measures how well the colour distribution of ``a`` matches that of ``b``
    (e.g. a colorization and its reference); images may differ in size.
    """
    return histogram_intersection(ab_histogram(a), ab_histogram(b))


def histogram_intersection(h1: np.ndarray, h2: np.ndarray) -> float:
    """sum(min(h1, h2)) of two normalised histograms (from `ab_histogram`), clipped to [0, 1].

    Lets an evaluator reuse the histogram of an image (a reference) scored against many outputs.
    """
    if h1.shape != h2.shape:
        raise ValueError(f"histograms must have the same shape, got {h1.shape} and {h2.shape}")
    return min(1.0, float(np.minimum(h1, h2).sum()))  # clip float round-off above 1


def delta_his(his_pred_ref: Sequence[float], his_gt_ref: Sequence[float]) -> float:
    """|mean HIS(pred, ref) - mean HIS(gt, ref)| over the same evaluation pairs.

    ``his_pred_ref[k] = his(pred_k, ref_k)`` and ``his_gt_ref[k] = his(gt_k, ref_k)``:
    how far the colorizations' similarity to the references is from the
    ground truth's own similarity to them (HIS_ref), lower is better.
    """
    p = np.asarray(his_pred_ref, dtype=np.float64).ravel()
    g = np.asarray(his_gt_ref, dtype=np.float64).ravel()
    if p.size == 0 or p.size != g.size:
        raise ValueError(
            f"need two non-empty sequences of HIS values over the same pairs, got {p.size} and {g.size}"
        )
    if not (np.all((p >= 0) & (p <= 1)) and np.all((g >= 0) & (g <= 1))):
        raise ValueError("HIS values must lie in [0, 1]")
    return float(abs(p.mean() - g.mean()))


# ------------------------------------------------------- full-reference


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004 setting) of two RGB images."""
    x, y = _as_pair(a, b)
    if min(x.shape[:2]) < SSIM_MIN_SIDE:
        raise ValueError(f"SSIM needs images at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE}, got {x.shape[:2]}")
    return float(
        structural_similarity(
            x,
            y,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def psnr_ab(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of the Lab ab channels: 10 log10(110^2 / MSE_ab), MSE in Lab units.

    Ignores luminance, which colorization takes from the input. Identical ab gives inf.
    """
    x, y = _as_pair(a, b)
    ab_x, ab_y = rgb2lab(x)[..., 1:], rgb2lab(y)[..., 1:]  # (H, W, 2) each, Lab units
    if np.array_equal(ab_x, ab_y):
        return float("inf")  # scikit-image would divide by zero
    return float(peak_signal_noise_ratio(ab_x, ab_y, data_range=AB_SCALE))


def ciede2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference per pixel (0 for identical images)."""
    x, y = _as_pair(a, b)
    return float(np.mean(deltaE_ciede2000(rgb2lab(x), rgb2lab(y))))


# -------------------------------------------------------------- no-reference


def colorfulness(img: np.ndarray) -> float:
    """Hasler & Suesstrunk 2003 colourfulness on RGB in [0, 255] (0 for gray)."""
    rgb = _as_rgb(img) * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.hypot(rg.std(), yb.std())
    mean = np.hypot(rg.mean(), yb.mean())
    return float(std + 0.3 * mean)


# ------------------------------------------------------------------- LPIPS


LPIPS_NETS = {"alex": "alexnet", "vgg": "vgg16"}  # LPIPS backbone -> its sa_lib.core.hub asset


class LPIPSMetric:
    """LPIPS (lpips package, net='alex' by default or 'vgg', version='0.1'), built lazily on first use.

    The paper does not say which backbone it scored LPIPS with: the tables report LPIPS(alex) as the main
    figure and LPIPS(vgg) beside it (docs/metrics.md).
    Construction failures (e.g. offline, no backbone weights) are remembered: the
    metric then reports unavailable instead of retrying the download every call.
    """

    def __init__(self, device: str = "cpu", net: str = "alex") -> None:
        if net not in LPIPS_NETS:
            raise ValueError(f"unknown LPIPS net {net!r}; choose {', '.join(LPIPS_NETS)}")
        self.device, self.net = device, net
        self._model = None
        self._error: str | None = None
        self.missing_weights = False  # True when the failure is the backbone's file (offline), not a broken install

    def _load(self):
        if self._model is not None:
            return self._model
        if self._error is None:
            try:
                hub.fetch(LPIPS_NETS[self.net])  # verified into torch hub's cache, where lpips/torchvision look
                import lpips  # deferred: lpips builds torchvision's networks; only when LPIPS is measured

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = lpips.LPIPS(net=self.net, version="0.1", verbose=False)
                self._model = model.eval().to(self.device)
                return self._model
            except hub.AssetUnavailable as exc:
                self._error = f"LPIPS({self.net}) unavailable: {exc}"
                self.missing_weights = True
            except Exception as exc:  # a broken lpips install or checkpoint
                reason = " ".join(str(exc).split())[:160]
                self._error = f"LPIPS({self.net}) unavailable ({type(exc).__name__}: {reason})"
        raise MetricUnavailable(self._error)

    @property
    def reason(self) -> str | None:
        """Why the metric is unavailable (one line), or None if it was built or never tried."""
        return self._error

    def available(self) -> bool:
        """True if the LPIPS network could be built (tries once)."""
        try:
            self._load()
        except MetricUnavailable:
            return False
        return True

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance of two RGB images (0 for identical images)."""
        x, y = _as_pair(a, b)
        model = self._load()

        def to_tensor(img: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()  # (3, H, W)
            return (t * 2.0 - 1.0).unsqueeze(0).to(self.device)

        with torch.no_grad():
            return float(model(to_tensor(x), to_tensor(y)).item())


_DEFAULT_LPIPS = LPIPSMetric()


def lpips_available() -> bool:
    """True if LPIPS(alex) can be used here (its backbone weights are present)."""
    return _DEFAULT_LPIPS.available()


def lpips_distance(a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS(alex, v0.1) distance on CPU; raises MetricUnavailable if it cannot be built."""
    return _DEFAULT_LPIPS(a, b)
