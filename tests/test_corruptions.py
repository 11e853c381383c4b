"""ImageNet-C corruptions on real EuroSAT test images (the shipped 1,000-image subset)."""

from __future__ import annotations

import numpy as np
import pytest

from eo_edge.measure.corruptions import (CORRUPTIONS, GAUSSIAN_NOISE_SIGMA, MOTION_BLUR_RADIUS_SIGMA, corrupt,
                                         corruption_params, disk_kernel, motion_blur_kernel, parse_corruptions,
                                         parse_severities)
from eo_edge.assets import TEST_SUBSET_DIR
from eo_edge.data.subsets import load_flat_images
from eo_edge.errors import EOEdgeError


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    if not TEST_SUBSET_DIR.is_dir():
        pytest.skip(f"shipped test subset not found at {TEST_SUBSET_DIR}")
    x, names, _, _ = load_flat_images(TEST_SUBSET_DIR, limit=1000)
    # 12 images of each of the 10 classes (the files are sorted by class name)
    classes = sorted({n.split("_")[0] for n in names})
    pick = [i for c in classes for i in [j for j, n in enumerate(names) if n.startswith(c + "_")][:12]]
    assert len(pick) == 120 and x.shape[1:] == (64, 64, 3) and x.dtype == np.uint8
    return x[pick]


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _hf_energy(x: np.ndarray) -> float:
    """Mean squared 4-neighbour Laplacian (a high-pass filter) over the image interiors."""
    f = x.astype(np.float64)
    lap = 4 * f[:, 1:-1, 1:-1] - f[:, :-2, 1:-1] - f[:, 2:, 1:-1] - f[:, 1:-1, :-2] - f[:, 1:-1, 2:]
    return float((lap ** 2).mean())


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_dtype_input_untouched_and_monotone(images, name):
    before = images.copy()
    mads = []
    for sev in (1, 2, 3, 4, 5):
        y = corrupt(images, name, sev, seed=0)
        assert y.shape == images.shape and y.dtype == np.uint8 and y is not images
        mads.append(_mad(y, images))
    assert np.array_equal(images, before)
    assert mads[0] > 0.5, mads
    assert all(b > a for a, b in zip(mads, mads[1:])), (name, mads)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_and_chunk_invariant(images, name):
    a = corrupt(images, name, 3, seed=7)
    assert np.array_equal(a, corrupt(images, name, 3, seed=7))
    assert np.array_equal(a[50:], corrupt(images[50:], name, 3, seed=7, offset=50))
    if name in ("gaussian_noise", "motion_blur"):  # the random ones
        assert not np.array_equal(a, corrupt(images, name, 3, seed=8))


def test_blur_removes_high_frequencies_noise_adds_them(images):
    e0 = _hf_energy(images)
    for name in ("motion_blur", "defocus_blur"):
        e = [_hf_energy(corrupt(images, name, s)) for s in (1, 3, 5)]
        assert e[0] < 0.8 * e0 and e[2] < e[1] < e[0], (name, e0, e)
        assert e[2] < 0.25 * e0, (name, e0, e)
    assert _hf_energy(corrupt(images, "gaussian_noise", 1)) > 2 * e0


def test_gaussian_noise_sigma_on_unclipped_pixels():
    grey = np.full((8, 64, 64, 3), 128, np.uint8)
    for sev in (1, 2):
        d = (corrupt(grey, "gaussian_noise", sev).astype(np.float64) - 128.0) / 255.0
        assert abs(d.std() / GAUSSIAN_NOISE_SIGMA[sev - 1] - 1) < 0.02
        assert abs(d.mean()) < 0.005


def test_motion_blur_kernel_matches_reference_at_224():
    """At scale 1 and angle 0 the kernel is ImageMagick's: 2r+1 taps at 0..2r px, Gaussian weights."""
    r, s = MOTION_BLUR_RADIUS_SIGMA[0]
    k = motion_blur_kernel(r, s, 0.0, 1.0)
    c = k.shape[0] // 2
    w = np.exp(-np.arange(2 * r + 1) ** 2 / (2 * s * s))
    np.testing.assert_allclose(k[c, c:c + 2 * r + 1], w / w.sum(), atol=1e-12)
    assert abs(k.sum() - 1) < 1e-12 and np.count_nonzero(k) == 2 * r + 1
    k90 = motion_blur_kernel(r, s, 90.0, 1.0)  # towards +row
    np.testing.assert_allclose(k90[c:c + 2 * r + 1, c], w / w.sum(), atol=1e-9)
    # scaled to 64 px: same weights, taps 2/7 px apart -> centroid 2/7 as far from the centre
    k64 = motion_blur_kernel(r, s, 30.0, 64 / 224)
    c64 = k64.shape[0] // 2
    yy, xx = np.mgrid[-c64:c64 + 1, -c64:c64 + 1]
    mean_d = float((w / w.sum() * np.arange(2 * r + 1)).sum())
    assert abs(float((k64 * xx).sum()) - mean_d * 64 / 224 * np.cos(np.pi / 6)) < 1e-9
    assert abs(float((k64 * yy).sum()) - mean_d * 64 / 224 * np.sin(np.pi / 6)) < 1e-9
    # a horizontal streak on a real image: out(p) = sum_i w_i x(p + i), edge replicated
    x = np.random.default_rng(0).random((1, 40, 40, 3))
    from eo_edge.measure.corruptions import _correlate

    got = _correlate(x[0], k, "edge")
    cols = np.minimum(np.arange(40)[:, None] + np.arange(2 * r + 1)[None, :], 39)
    ref = np.einsum("hwkc,k->hwc", x[0][:, cols, :], w / w.sum())
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_disk_kernel():
    k = disk_kernel(2.857)
    assert k.shape == (7, 7) and abs(k.sum() - 1) < 1e-12 and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    assert k[3, 3] == k.max() and k[0, 0] == 0


def test_brightness_equals_hsv_value_shift(images):
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(images[:10].astype(np.float64) / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    ref = np.rint(hsv_to_rgb(hsv) * 255)
    got = corrupt(images[:10], "brightness", 3).astype(np.float64)
    assert np.abs(got - ref).max() <= 1


def test_parse_severities_and_names():
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("1,3,5") == [1, 3, 5]
    assert parse_severities(" 5 , 1-2 ") == [1, 2, 5]
    assert parse_severities(3) == [3] and parse_severities([2, 2, 1]) == [1, 2]
    for bad in ("", "0", "6", "1-6", "5-1", "a", "1,,2", "1-", "-1", "2.5"):
        with pytest.raises(EOEdgeError) as e:
            parse_severities(bad)
        assert "\n" not in str(e.value)
    assert parse_corruptions("all") == list(CORRUPTIONS)
    assert parse_corruptions("motion_blur, gaussian_noise,motion_blur") == ["motion_blur", "gaussian_noise"]
    with pytest.raises(EOEdgeError, match="unknown corruption 'fog'"):
        parse_corruptions("fog")
    p = corruption_params("motion_blur", 5, 64)
    assert p["taps"] == 41 and p["streak_px"] == 11.43 and p["sigma_px"] == 4.29


def test_bad_arguments(images):
    for args, msg in (((images, "snow", 1), "unknown corruption"), ((images, "motion_blur", 0), "1..5"),
                      ((images, "motion_blur", 6), "1..5"), ((images, "gaussian_noise", "3"), "1..5"),
                      ((images.astype(np.float32), "gaussian_noise", 1), "uint8"),
                      ((images[0], "gaussian_noise", 1), "uint8")):
        with pytest.raises(EOEdgeError, match=msg) as e:
            corrupt(*args)
        assert "\n" not in str(e.value)
    with pytest.raises(EOEdgeError, match="seed"):
        corrupt(images, "gaussian_noise", 1, seed=-1)
    assert corrupt(images[:0], "motion_blur", 2).shape == (0, 64, 64, 3)
