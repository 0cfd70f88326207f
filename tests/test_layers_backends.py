"""The same draws on every backend (issue 16): for a given seed and call count the random layers give
bit-identical Dropout masks, InputNoise noise, crop offsets, flips and rotation angles on TensorFlow, JAX and
PyTorch, and a ``.keras`` file saved on one backend reloads on another and continues the same stream.

The suite runs on one backend (``KERAS_BACKEND``); this file saves each layer here after calls 0 and 1 and
starts one subprocess on the *next* backend of the ring tensorflow -> jax -> torch -> tensorflow
(:func:`write_draws` there), which records its draws of calls 0, 1 and 2, saves each layer after calls 0 and
1, and reloads this backend's files and draws their call 2. Here: the other backend's draws must be
bit-identical to this backend's, each of its reloaded layers must have ``rng_state`` (seed, 2) and draw this
backend's call 2, and so must this backend's files reloaded there. Each run checks one pair both ways; the
suite on all three backends covers every ordered pair (bit equality is the same relation every way round)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_optreg import layers as L
from keras_optreg.layers import images
from tests import layer_checks as lc
from tests.backend import BACKEND

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
RING = tuple(PACKAGES)
OTHERS = [RING[(RING.index(BACKEND) + 1) % len(RING)]]  # the next backend of the ring
CALLS = 3  # draws of calls 0, 1, 2; files saved after calls 0 and 1

# name: (layer, input). The inputs make each draw visible in the output: ones (a dropped unit is 0), zeros
# (InputNoise(1.0) returns z itself: 0 + 1 * z is exact), distinct pixel values (the crop window and the
# flips are read off the output; crop and flip move values without arithmetic).
LAYERS = {
    "dropout": (lambda: L.Dropout(0.5, seed=11), np.ones((3, 97), np.float32)),
    "input_noise": (lambda: L.InputNoise(1.0, seed=12), np.zeros((3, 97), np.float32)),
    "random_crop": (lambda: L.RandomCrop(4, 3, seed=13),
                    np.arange(6 * 7 * 5, dtype=np.float32).reshape(6, 7, 5, 1)),
    "random_flip": (lambda: L.RandomFlip("horizontal_and_vertical", seed=14),
                    np.arange(16 * 2 * 3, dtype=np.float32).reshape(16, 2, 3, 1)),
    "random_rotation": (lambda: L.RandomRotation(0.2, seed=15),
                        np.random.default_rng(0).uniform(size=(5, 6, 6, 1)).astype(np.float32)),
}


def _draw(name, layer, x):
    """One training call's draws: the mask, the noise, the crop and flip outputs; for the rotation the angles
    (``images.rotation_angles`` on the state the call reads, exactly what the layer rotates by) and the image."""
    out = {}
    if name == "random_rotation":
        state = lc.numpy(layer.rng_state)
        out["angles"] = lc.numpy(images.rotation_angles(keras.ops.convert_to_tensor(state), x.shape[0],
                                                        *layer._angle_parameters()))
    y = lc.numpy(layer(x, training=True))
    out["y"] = (y != 0) if name == "dropout" else y
    return out


def write_draws(directory, theirs=None):
    """In a process on one backend: every layer's draws of calls 0..2 into ``draws.npz``, each layer saved as
    a one-layer model ``<name>.keras`` after calls 0 and 1 (its state then (seed, 2)). With ``theirs`` (a
    directory of another backend's files): each of those reloaded, its state and its next call's draws
    recorded as ``<name>/loaded/state`` and ``<name>/loaded/<key>``."""
    record = {}
    for name, (make, x) in LAYERS.items():
        layer = make()
        model = keras.Sequential([keras.Input(x.shape[1:]), layer])
        for call in range(CALLS):
            if call == 2:
                model.save(os.path.join(directory, f"{name}.keras"))
            for key, value in _draw(name, layer, x).items():
                record[f"{name}/{call}/{key}"] = value
        if theirs is not None:
            loaded = keras.models.load_model(os.path.join(theirs, f"{name}.keras")).layers[0]
            assert type(loaded) is type(layer), name
            record[f"{name}/loaded/state"] = lc.numpy(loaded.rng_state)
            for key, value in _draw(name, loaded, x).items():
                record[f"{name}/loaded/{key}"] = value
    np.savez(os.path.join(directory, "draws.npz"), **record)


_CHILD = """
import os, sys
sys.path.insert(0, {root!r})
from tests.test_layers_backends import write_draws
write_draws({directory!r}, {theirs!r})
"""


def _run_other_backend(backend, directory, theirs):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=ROOT, directory=str(directory),
                                                                 theirs=str(theirs))], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, f"{backend} worker failed:\n{err[-3000:]}"


@pytest.fixture(scope="module")
def others(tmp_path_factory):
    """Per other backend, the directory its worker wrote (None where that backend is not installed); this
    backend's own files, which the worker reloads, are in ``ours/`` beside them."""
    ours = tmp_path_factory.mktemp(f"draws_{BACKEND}")
    write_draws(ours)
    out = {}
    for backend in OTHERS:
        if importlib.util.find_spec(PACKAGES[backend]) is None:
            out[backend] = None
            continue
        directory = tmp_path_factory.mktemp(f"draws_{backend}")
        _run_other_backend(backend, directory, ours)
        out[backend] = directory
    return out


def _ours():
    record = {}
    for name, (make, x) in LAYERS.items():
        layer = make()
        for call in range(CALLS):
            for key, value in _draw(name, layer, x).items():
                record[f"{name}/{call}/{key}"] = value
    return record


def _assert_same_draw(name, key, got, want, msg):
    """Bit for bit, except a rotated image: it goes through cos, sin and bilinear weights, whose float32
    roundings may differ by an ulp between backends (the angles, compared bit for bit, are the draws)."""
    if name == "random_rotation" and key == "y":
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, want, err_msg=msg)


def _directory(others, backend):
    if others[backend] is None:
        pytest.skip(f"the {backend} backend is not installed ({PACKAGES[backend]}: pip install it to compare)")
    return others[backend]


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.spec("dropout", "input_noise", "random_crop", "random_flip", "random_rotation")
def test_dropout_input_noise_random_crop_random_flip_random_rotation_draw_the_same_bits_on_every_backend(
        others, other):
    theirs = np.load(_directory(others, other) / "draws.npz")
    ours = _ours()
    assert sorted(k for k in theirs.files if "/loaded/" not in k) == sorted(ours)
    for key, value in ours.items():
        name, _, kind = key.split("/")
        _assert_same_draw(name, kind, theirs[key], value, f"{other}: {key}")
    # the draws are not degenerate: masks mix, noise varies, calls differ
    assert 0 < ours["dropout/0/y"].mean() < 1 and not np.array_equal(ours["dropout/0/y"], ours["dropout/1/y"])
    assert not np.array_equal(ours["random_rotation/0/angles"], ours["random_rotation/1/angles"])


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.spec("dropout", "input_noise", "random_crop", "random_flip", "random_rotation")
def test_dropout_input_noise_random_crop_random_flip_random_rotation_files_continue_the_stream_both_ways(
        others, other):
    """The other backend's files reloaded here, and this backend's reloaded there (its worker's record): each
    layer's state is (seed, 2), in this backend's seed dtype here, and its next call draws this backend's call 2."""
    directory = _directory(others, other)
    theirs = np.load(directory / "draws.npz")
    ours = _ours()
    for name, (make, x) in LAYERS.items():
        model = keras.models.load_model(directory / f"{name}.keras")
        layer = model.layers[0]
        assert type(layer) is type(make()), name
        state = lc.numpy(layer.rng_state)
        np.testing.assert_array_equal(state, [make().seed, 2], err_msg=f"{other} -> {BACKEND}: {name} rng_state")
        assert layer.rng_state.dtype == make().rng_state.dtype  # loaded into this backend's seed dtype
        for key, value in _draw(name, layer, x).items():
            _assert_same_draw(name, key, value, ours[f"{name}/2/{key}"], f"{other} -> {BACKEND}: {name} {key}")
        np.testing.assert_array_equal(theirs[f"{name}/loaded/state"], [make().seed, 2],
                                      err_msg=f"{BACKEND} -> {other}: {name} rng_state")
        for key in ("angles", "y") if name == "random_rotation" else ("y",):
            _assert_same_draw(name, key, theirs[f"{name}/loaded/{key}"], ours[f"{name}/2/{key}"],
                              f"{BACKEND} -> {other}: {name} {key}")
