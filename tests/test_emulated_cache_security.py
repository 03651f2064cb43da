"""The emulated backend's compiled-library cache cannot be used to run another user's code
(issue 21, S2): it lives in the user's cache dir, in a 0700 folder; a folder another user
could write to is refused, and a library found there is loaded only when its SHA-256 is
the one recorded when this user compiled it. The planted library is harmless: its
constructor writes a marker file."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from gpuaug.executors import emulator, launch

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="needs g++")


def _source(tag: str) -> str:  # a kernel of its own per test: a library no earlier test loaded
    return f'extern "C" __global__ void noop_{tag}(int* out, int n) {{ if (threadIdx.x == 0) out[0] = n; }}\n'


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUAUG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(emulator, "_libraries", {})
    return tmp_path / "cache" / "emulated"


def _library_path(monkeypatch, tag: str):
    """Where the library of ``_source(tag)`` is cached (found without compiling it)."""
    seen = []

    def record(compiler, unit, so_path, file_stem):
        seen.append(so_path)
        raise RuntimeError("not compiled")

    with monkeypatch.context() as m:
        m.setattr(emulator, "_compile_emulated", record)
        with pytest.raises(RuntimeError, match="not compiled"):
            _load(tag)
    return seen[0]


def _load(tag: str):
    source = _source(tag)
    sigs = launch.parse_kernels(source)
    return emulator._emulated_kernel(f"t_{tag}", source, sigs, sigs[f"noop_{tag}"])


def _plant(path, marker) -> None:
    """A shared library whose constructor writes ``marker`` (and a matching digest record)."""
    c = path.parent / "evil.c"
    c.write_text('#include <stdio.h>\n__attribute__((constructor)) static void planted(void) '
                 f'{{ FILE* f = fopen("{marker}", "w"); if (f) fclose(f); }}\n')
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(path), str(c)], check=True)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "\n")


def test_cache_is_a_private_folder_of_the_user_cache_dir(cache):
    kernel = _load("private")
    out = np.zeros(1, np.int32)
    kernel((1, 1, 1), (1, 1, 1), [out, 7])
    assert out[0] == 7
    assert launch.cache_dir() == cache and (cache.stat().st_mode & 0o777) == 0o700
    assert [p.suffix for p in sorted(cache.iterdir())] == [".so", ".sha256"]


def test_a_folder_others_may_write_to_is_refused(cache, monkeypatch, tmp_path):
    so_path = _library_path(monkeypatch, "open")
    os.chmod(cache, 0o777)  # as another user would have pre-created it
    marker = tmp_path / "planted-ran"
    _plant(so_path, marker)
    with pytest.raises(PermissionError, match=r"refusing the emulated-kernel cache .*mode 777"):
        _load("open")
    assert not marker.exists()


def test_a_library_not_compiled_by_this_user_is_not_loaded(cache, monkeypatch, tmp_path):
    so_path = _library_path(monkeypatch, "swap")
    marker = tmp_path / "planted-ran"
    _plant(so_path, marker)
    so_path.with_name(so_path.name + ".sha256").write_text("0" * 64 + "\n")  # not the digest of what lies there
    kernel = _load("swap")  # compiled again, then loaded
    out = np.zeros(1, np.int32)
    kernel((1, 1, 1), (1, 1, 1), [out, 3])
    assert out[0] == 3 and not marker.exists()
