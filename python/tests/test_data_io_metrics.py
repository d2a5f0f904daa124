"""Datasets, the loader, safetensors and metrics against the C++ API and independent oracles."""

import numpy as np
import pytest

import cuebm


def test_datasets_are_the_cpp_generators():
    ds = cuebm.GaussianMixtureDataset(n_samples=500, n_components=4, std=0.1, radius=1.5, seed=42)
    ref = cuebm.make_dataset("gaussian_mixture", 42, n=500, components=4, std=0.1, radius=1.5)
    np.testing.assert_array_equal(ds.get_data(), ref)
    assert ds.get_data().shape == (500, 2) and ds.get_data().dtype == np.float32
    centres = cuebm.gaussian_mixture_centres(4, 1.5)
    nearest = np.argmin(((ref[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert np.bincount(nearest).tolist() == [125, 125, 125, 125]  # n / K each
    for cls in [cuebm.EightGaussiansDataset, cuebm.TwoMoonsDataset, cuebm.SwissRollDataset,
                cuebm.CircleDataset, cuebm.CheckerboardDataset, cuebm.PinwheelDataset]:
        a, b = cls(n_samples=300, seed=1).get_data(), cls(n_samples=300, seed=1).get_data()
        assert a.shape == (300, 2) and np.array_equal(a, b)
    assert cuebm.GridDataset(n_samples_per_dim=7).get_data().shape == (49, 2)
    with pytest.raises(ValueError, match="n"):
        cuebm.GaussianMixtureDataset(n_samples=0)


def test_data_loader_visits_every_row_once_per_epoch():
    data = cuebm.make_dataset("two_moons", 3, n=100)
    loader = cuebm.DataLoader(data, batch_size=32, shuffle=True, drop_last=False, seed=5)
    batches = list(loader.epoch(2))
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    rows = np.concatenate(batches)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, data))
    again = np.concatenate(list(loader.epoch(2)))
    np.testing.assert_array_equal(again, rows)
    assert not np.array_equal(np.concatenate(list(loader.epoch(3))), rows)


def test_safetensors_round_trip_keeps_dtypes(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.linspace(0, 1, 5)  # float64
    cuebm.save_safetensors(tmp_path / "t.safetensors", {"a": a.T, "b": b}, {"note": "x"})
    tensors, meta = cuebm.load_safetensors(tmp_path / "t.safetensors")
    assert list(tensors) == ["a", "b"] and meta == {"note": "x"}
    np.testing.assert_array_equal(tensors["a"], a.T)  # strided input written in C order
    assert tensors["b"].dtype == np.float64
    np.testing.assert_array_equal(tensors["b"], b)
    with pytest.raises(TypeError, match="int64"):
        cuebm.save_safetensors(tmp_path / "u.safetensors", {"c": np.zeros(3, np.int64)})
    (tmp_path / "bad.safetensors").write_bytes(b"\x01\x00")
    with pytest.raises(cuebm.IoError, match="bad.safetensors"):
        cuebm.load_safetensors(tmp_path / "bad.safetensors")


def test_safetensors_file_format_is_the_reference_layout(tmp_path):
    # An independent reader: 8-byte little-endian header length, JSON header, raw data.
    import json
    import struct

    a = np.array([[1.5, -2.0]], np.float32)
    cuebm.save_safetensors(tmp_path / "t.safetensors", {"w": a})
    raw = (tmp_path / "t.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["w"] == {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}
    assert np.frombuffer(raw[8 + n:], np.float32).tolist() == [1.5, -2.0]


def mmd2_numpy(a, b):
    z = np.concatenate([a, b]).astype(np.float64)
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    m = np.median(d2[np.triu_indices(len(z), 1)])
    k = np.exp(-d2 / m)
    na, nb = len(a), len(b)
    kaa, kbb, kab = k[:na, :na], k[na:, na:], k[:na, na:]
    return ((kaa.sum() - np.trace(kaa)) / (na * (na - 1)) + (kbb.sum() - np.trace(kbb)) /
            (nb * (nb - 1)) - 2 * kab.mean())


def test_metrics_against_independent_computations(rng):
    a = rng.standard_normal((60, 2)).astype(np.float32)
    b = (rng.standard_normal((50, 2)) + 0.5).astype(np.float32)
    # Both in double from the same float32 points: only the summation order differs.
    assert cuebm.mmd2_rbf(a, b) == pytest.approx(mmd2_numpy(a, b), rel=1e-9, abs=1e-12)
    # Harmonic energy k = 4 at T = 0.5: Z = 2 pi T / k, the grid sum converges to it fast.
    h = cuebm.HarmonicEnergy(4.0, dim=2)
    assert cuebm.grid_log_partition(h, 0.5, (-4, 4, -4, 4, 201, 201)) == pytest.approx(
        np.log(2 * np.pi * 0.5 / 4.0), abs=1e-6)
    centres = cuebm.gaussian_mixture_centres(4, 1.5)
    samples = np.repeat(centres, [10, 20, 0, 30], axis=0)
    r = cuebm.mode_report(samples, centres, 0.1)
    assert r["covered"] == 3 and r["counts"] == [10, 20, 0, 30]
    assert cuebm.mixture_entropy_2d(4, 0.1) == pytest.approx(np.log(4) + np.log(2 * np.pi *
                                                                             np.e * 0.01))
