"""Host-side pieces of the cuda executor: vectorised parameters and the packed upload."""

from __future__ import annotations

import numpy as np

from gpuaug.executors import params, staging
from gpuaug.ops import OP_IDS


def _scalar_rotate(degrees, width, height):
    return params._rotate_coefficients.__wrapped__(degrees, width, height)


def test_rotate_coefficients_match_the_scalar_pillow_rounding():
    rng = np.random.default_rng(0)
    n = 600
    ids = np.full(n, OP_IDS["rotate"], dtype=np.int32)
    # whole degrees (what plans draw), arbitrary floats, negatives, zero and signed zero
    values = np.concatenate([rng.integers(-30, 31, 300).astype(np.float64), rng.uniform(-360, 360, 296),
                             [0.0, -0.0, 359.999, -360.0]])
    ids[::7] = OP_IDS["shear_x"]
    for h, w in ((224, 224), (32, 48), (7, 5)):
        got = params.affine_coefficients(ids, values, h, w)
        for i in range(n):
            if ids[i] == OP_IDS["rotate"]:
                want = np.array(_scalar_rotate(float(values[i]), w, h))
                assert np.array_equal(got[i].view(np.uint64), want.view(np.uint64)), (i, values[i])
            else:
                assert np.array_equal(got[i], [1.0, values[i], 0.0, 0.0, 1.0, 0.0])


def test_upload_packs_parts_into_one_buffer_with_aligned_views():
    parts = {"a": np.arange(5, dtype=np.int32), "b": np.linspace(0, 1, 3), "c": np.arange(6, dtype=np.uint8),
             "d": np.arange(12, dtype=np.float32).reshape(4, 3), "e": np.array([7], dtype=np.uint64)}
    dev = staging.upload(np, parts)
    base = dev["a"].base if dev["a"].base is not None else dev["a"]
    for name, a in parts.items():
        assert dev[name].dtype == a.dtype and dev[name].shape == a.shape
        assert np.array_equal(dev[name], a)
        assert dev[name].ctypes.data % 8 == 0
        assert np.shares_memory(dev[name], base) or dev[name].base is not None
    # a second upload does not overwrite the first one's data (the scratch is copied)
    staging.upload(np, {"a": np.zeros(5, np.int32)})
    assert np.array_equal(dev["a"], parts["a"])


def test_recording_upload_is_one_pinned_transfer():
    from gpuaug.executors import recording

    with recording.session() as rec:
        dev = staging.upload(recording.xp, {"x": np.arange(3, dtype=np.int32), "y": np.ones(2)})
    s = rec.summary()
    assert s["uploads"] == 1 and s["pageable_uploads"] == 0
    assert np.array_equal(dev["x"].host, [0, 1, 2]) and dev["y"].dtype == np.float64


def test_run_chains_on_kernels_equals_one_chain_at_a_time_on_cpu():
    from gpuaug import ops
    from gpuaug.executors.backend import get_backend
    from gpuaug.methods.chains import run_chain, run_chains, sample_chains

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    op_ids = ops.op_ids(ops.ALL_OPS + ("downscale", "mirror", "flip", "invert"))
    ids, values, _ = sample_chains(rng, op_ids, (5, 3), -1, 3, 12, 10)
    cpu, emu = get_backend("cpu"), get_backend("emulated")
    got = run_chains(emu, images, ids, values)
    assert len(got) == 3
    for j in range(3):
        want = run_chain(cpu, images, ids[:, j], values[:, j])
        assert np.array_equal(got[j], want), j
    # all-identity chains give the images back
    same = run_chains(emu, images, np.zeros_like(ids), np.zeros_like(values))
    assert all(c is images for c in same)


def test_dali_node_takes_a_dense_batch_without_a_copy():
    from gpuaug.dali import _dense_batch
    from gpuaug.executors import recording

    dense = np.arange(4 * 5 * 6 * 3, dtype=np.uint8).reshape(4, 5, 6, 3)
    view = _dense_batch(np, list(dense))
    assert np.shares_memory(view, dense) and np.array_equal(view, dense) and not view.flags.writeable
    apart = [dense[i].copy() for i in range(4)]
    stacked = _dense_batch(np, apart)
    assert np.array_equal(stacked, dense) and not any(np.shares_memory(stacked, a) for a in apart)
    shuffled = [dense[i] for i in (1, 0, 2, 3)]
    assert np.array_equal(_dense_batch(np, shuffled), dense[[1, 0, 2, 3]])
    with recording.session() as rec:
        batch = recording.device_images(3, 4, 4)
        x = _dense_batch(recording.xp, list(batch))
    assert x.shape == batch.shape and x.data.ptr == batch.data.ptr and rec.summary()["elementwise"] == 0


def _bits(a):
    return np.asarray(a).view(np.uint32)


def test_vectorised_mix_kernels_equal_the_numpy_twin_aligned_or_not():
    from gpuaug.executors import mixops
    from gpuaug.executors.backend import get_backend

    cpu, emu = get_backend("cpu"), get_backend("emulated")
    rng = np.random.default_rng(5)
    for n, h, w in ((3, 8, 8), (2, 5, 3)):  # 4 | 3hw (vector path) and not (scalar tail only)
        size = n * h * w * 3
        raw = rng.integers(0, 256, 4 * size + 1, dtype=np.uint8)
        x, c1, c2 = (raw[i * size:(i + 1) * size].reshape(n, h, w, 3) for i in range(3))
        odd = raw[3 * size + 1 - size:3 * size + 1].reshape(n, h, w, 3)  # starts at an odd address
        weights = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
        skip = rng.uniform(size=n).astype(np.float32)
        for chains in ([c1, c2, x], [c1, odd, x]):
            got = mixops.weighted_mix(emu, x, chains, weights, skip)
            want = mixops.weighted_mix(cpu, x, chains, weights, skip)
            assert np.array_equal(_bits(got), _bits(want))
        m1 = rng.uniform(size=n).astype(np.float32)
        for a, b in ((c1, c2), (odd, c2)):
            assert np.array_equal(_bits(mixops.dynamic_mix(emu, a, b, m1)), _bits(mixops.dynamic_mix(cpu, a, b, m1)))
        k = 3
        args = dict(partner_is_aug=rng.uniform(size=(n, k)) < 0.5, rounds=rng.integers(0, k + 1, n),
                    multiplicative=rng.uniform(size=(n, k)) < 0.5,
                    a=rng.uniform(0, 1, (n, k)).astype(np.float32), b=rng.uniform(0, 1, (n, k)).astype(np.float32))
        for start, pic in ((x, c1), (x, odd)):
            got = mixops.pixmix_rounds(emu, start, pic, [c2, x, c1], **args)
            want = mixops.pixmix_rounds(cpu, start, pic, [c2, x, c1], **args)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # float64 pow: an ulp between libms
            assert np.mean(_bits(got) == _bits(want)) > 0.99


def test_chains_skip_identity_rows_and_keep_every_chain_exact():
    from gpuaug import ops
    from gpuaug.executors import cpu, cuda, recording
    from gpuaug.methods.chains import IDENTITY

    rng = np.random.default_rng(8)
    n, h, w = 4, 13, 11
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    name = {v: k for k, v in ops.OP_IDS.items()}
    down, rot, eq, post = (ops.OP_IDS[k] for k in ("downscale", "rotate", "equalize", "posterize"))
    I = IDENTITY
    # rows: 3 chains of 4 images; identities anywhere, rows without ops, downscale as a
    # first op (reads the input) and as a later op (reads its chain's previous result)
    ids = np.array([[down, I, I], [I, I, I], [rot, down, I], [I, eq, down],
                    [post, I, rot], [I, I, I], [down, down, I], [eq, I, I],
                    [I, I, down], [rot, eq, post], [I, I, I], [I, down, I]], dtype=np.int32)
    values = np.zeros(ids.shape)
    for op, draw in ((down, lambda k: rng.uniform(1.2, 3.5, k)), (rot, lambda k: rng.integers(-30, 31, k)),
                     (post, lambda k: rng.integers(1, 5, k))):
        sel = ids == op
        values[sel] = draw(sel.sum())
    got = cuda.apply_chains_xp(images, ids, values, "emulated")
    for v in range(ids.shape[0]):
        want = images[v % n][None]
        for s in range(ids.shape[1]):
            if ids[v, s] != I:
                want = cpu.apply_ops(want, ids[v, s:s + 1], values[v, s:s + 1])
        assert np.array_equal(got[v], want[0]), (v, [name[int(i)] for i in ids[v]])
    # fewer bytes: a row is read and written only at the steps where it has an op
    with recording.session() as rec:
        cuda.apply_chains_xp(recording.device_images(n, h, w), ids, values, "recording")
    kernels = rec.summary()["kernels"]
    applied = (ids != I).sum() - (ids == down).sum() + 3  # + the op-less rows, copied once
    assert kernels["gpuaug_apply"]["bytes"] == 2 * applied * h * w * 3


def test_ipmix_patch_rounds_over_all_chains_equal_the_cpu_executor():
    from gpuaug import IPMix
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(4)
    for n, size, kw in ((6, 24, dict(patch_sizes=(4, 8, 24))), (5, 17, dict(k=2, t=4, patch_sizes=(3, 17),
                                                                             augment_partner=False))):
        m = IPMix(**kw)
        images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        pictures = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        for seed in range(3):
            plan = m.plan(n, size, size, np.random.default_rng(seed))
            got = m.execute(plan, images, pictures, get_backend("emulated"))
            want = m.execute(plan, images, pictures, get_backend("cpu"))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
            assert np.mean(got == want) > 0.999


def test_apply_kernel_pointwise_ops_four_pixels_per_thread_or_not():
    from gpuaug import ops
    from gpuaug.executors import cpu, cuda

    rng = np.random.default_rng(9)
    names = ("identity", "autocontrast", "equalize", "posterize", "solarize", "invert", "color", "contrast",
             "brightness", "rotate", "sharpness")
    ids = np.repeat(ops.op_ids(names), 2).astype(np.int32)
    values = ops.sample_values(ids, 3, rng, 8, 6)
    for h, w in ((8, 6), (7, 5)):  # 4 | H W: the 4-pixel path; else the per-pixel path
        n = ids.size
        raw = rng.integers(0, 256, n * h * w * 3 + 1, dtype=np.uint8)
        for images in (raw[:-1].reshape(n, h, w, 3), raw[1:].reshape(n, h, w, 3)):  # aligned, odd address
            got = cuda.apply_ops_xp(images, ids, values, "emulated")
            assert np.array_equal(got, cpu.apply_ops(images, ids, values)), (h, w, images.ctypes.data % 4)


def test_views_run_together_and_equal_one_plan_at_a_time():
    import gpuaug
    from gpuaug.executors.backend import get_backend
    from gpuaug.executors import recording

    m = gpuaug.NoisyMix()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    plans = [m.plan(5, 16, 16, np.random.default_rng(s)) for s in (1, 2)]
    got = m.execute_all(plans, x, None, get_backend("emulated"))
    for plan, out in zip(plans, got):
        assert np.array_equal(out, m.execute(plan, x, None, get_backend("cpu")))
    # one executor step per chain step for both views together
    with recording.session() as rec:
        m.execute_all(plans, recording.device_images(5, 16, 16), None, get_backend("recording"))
    depth = max(int((p.ops != 0).any(axis=(0, 1)).sum()) for p in plans)
    assert rec.summary()["kernels"]["gpuaug_apply"]["launches"] <= depth


def _read_row(address, h, w):
    import ctypes

    return np.ctypeslib.as_array((ctypes.c_uint8 * (h * w * 3)).from_address(int(address))).reshape(h, w, 3)


def test_deferred_last_lut_step_read_through_its_lut_equals_the_chain():
    # apply_chains_xp(defer_lut=True): a row whose last op is a LUT op is left unwritten;
    # its step input read through its LUT (as the weighted-mix kernel does) is the chain
    from gpuaug import ops
    from gpuaug.executors import cpu, cuda, recording
    from gpuaug.methods.chains import IDENTITY as I

    rng = np.random.default_rng(9)
    n, h, w = 3, 9, 7
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    eq, post, sol, rot, auto = (ops.OP_IDS[k] for k in ("equalize", "posterize", "solarize", "rotate", "autocontrast"))
    ids = np.array([[I, eq], [rot, post], [I, I], [sol, rot], [auto, sol], [I, rot]], dtype=np.int32)
    values = np.zeros(ids.shape)
    values[ids == post], values[ids == sol], values[ids == rot] = 3, 128, 10
    cr = cuda.apply_chains_xp(images, ids, values, "emulated", defer_lut=True)
    lut_last = np.isin(ids[:, -1], [eq, post, sol, auto])
    assert np.array_equal(cr.luts != 0, lut_last)
    for v in range(ids.shape[0]):
        want = images[v % n][None]
        for s in range(ids.shape[1]):
            if ids[v, s] != I:
                want = cpu.apply_ops(want, ids[v, s:s + 1], values[v, s:s + 1])
        got = _read_row(cr.rows[v], h, w)
        if cr.luts[v]:
            lut = _read_row(cr.luts[v], 1, 256).reshape(3, 256)
            got = np.stack([lut[c][got[..., c]] for c in range(3)], axis=-1)
        assert np.array_equal(got, want[0]), v
    # op-less rows point at their input image: no copy
    assert cr.rows[2] == images[2].ctypes.data
    # a batch whose chains all end in LUT ops runs no apply pass: the mix applies them
    with recording.session() as rec:
        cuda.apply_chains_xp(recording.device_images(n, h, w), ids[lut_last], values[lut_last], "recording",
                             defer_lut=True)
    kernels = rec.summary()["kernels"]
    assert kernels["gpuaug_apply"]["bytes"] == 2 * 2 * h * w * 3  # only the first steps (rotate, autocontrast)


def test_augmix_fuses_the_last_lut_step_into_the_mix_and_equals_cpu():
    from gpuaug import AugMix, NoisyMix
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    for method in (AugMix(op_list=("posterize", "solarize", "equalize", "rotate")), NoisyMix()):
        plan = method.plan(5, 12, 10, np.random.default_rng(1))
        got = method.execute(plan, images, None, get_backend("emulated"))
        want = method.execute(plan, images, None, get_backend("cpu"))
        assert np.array_equal(_bits(got), _bits(want))
    method = AugMix(op_list=("posterize", "solarize"), depth=1)  # every chain: one LUT op, fused
    with recording.session() as rec:
        method.execute(method.plan(8, 32, 32, np.random.default_rng(2)), recording.device_images(8, 32, 32),
                       None, get_backend("recording"))
    assert set(rec.summary()["kernels"]) == {"gpuaug_build_luts", "gpuaug_weighted_mix"}


def test_dynamic_mixup_fuses_the_last_lut_step_into_the_mix_and_equals_cpu():
    from gpuaug import DynamicMixup
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (6, 11, 13, 3), dtype=np.uint8)
    for method in (DynamicMixup(op_list=("posterize", "equalize", "solarize", "rotate")),
                   DynamicMixup(downscale=True, independent_m2=True)):
        plan = method.plan(6, 11, 13, np.random.default_rng(3))
        got = method.execute(plan, images, None, get_backend("emulated"))
        want = method.execute(plan, images, None, get_backend("cpu"))
        assert np.array_equal(_bits(got), _bits(want))
    method = DynamicMixup(op_list=("posterize", "solarize"))
    plan = method.plan(8, 32, 32, np.random.default_rng(2))
    plan.ops[:, :, 1] = plan.ops[:, :, 0]  # two-op chains: the second op fused, the first applied
    with recording.session() as rec:
        method.execute(plan, recording.device_images(8, 32, 32), None, get_backend("recording"))
    kernels = rec.summary()["kernels"]
    assert kernels["gpuaug_apply"]["launches"] == 1 and kernels["gpuaug_build_luts"]["launches"] == 2


def test_identity_first_is_a_stable_partition_of_each_row():
    from gpuaug.executors import cuda

    rng = np.random.default_rng(10)
    for depth in (1, 2, 3, 5):
        ids = rng.integers(0, 3, (200, depth)).astype(np.int32)
        values = rng.uniform(size=ids.shape)
        has_op = ids != 0
        order = np.argsort(has_op, axis=1, kind="stable")
        got = cuda._identity_first(ids, values, has_op)
        for g, a in zip(got, (ids, values, has_op)):
            assert np.array_equal(g, np.take_along_axis(a, order, axis=1))


def test_pixmix_fuses_its_lut_ops_into_the_rounds_and_equals_cpu():
    from gpuaug import PixMix
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8)
    pictures = rng.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8)
    for method in (PixMix(op_list=("posterize", "solarize", "equalize", "rotate")), PixMix()):
        plan = method.plan(6, 12, 10, np.random.default_rng(1))
        got = method.execute(plan, images, pictures, get_backend("emulated"))
        want = method.execute(plan, images, pictures, get_backend("cpu"))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # float64 pow: an ulp between libms
        assert np.mean(_bits(got) == _bits(want)) > 0.99
    method = PixMix(op_list=("posterize", "solarize"))  # every op a LUT: no apply pass, no copies
    with recording.session() as rec:
        method.execute(method.plan(8, 32, 32, np.random.default_rng(2)), recording.device_images(8, 32, 32),
                       recording.device_images(8, 32, 32), get_backend("recording"))
    assert set(rec.summary()["kernels"]) == {"gpuaug_build_luts", "gpuaug_pixmix_rounds"}


def test_ipmix_unpatched_chains_are_read_in_place_or_through_their_lut():
    # chains without patch steps: last LUT op fused into the mix, op-less ones not copied;
    # patched chains stay materialised (the patch rounds write them in place)
    from gpuaug import IPMix
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    pictures = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    method = IPMix(op_list=("posterize", "solarize", "equalize", "rotate"), patch_sizes=(4, 8))
    for seed in range(3):
        plan = method.plan(6, 16, 16, np.random.default_rng(seed))
        got = method.execute(plan, images, pictures, get_backend("emulated"))
        want = method.execute(plan, images, pictures, get_backend("cpu"))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # float64 pow: an ulp between libms
    method = IPMix(op_list=("posterize", "solarize"), patch_sizes=(4,))
    plan = method.plan(16, 16, 16, np.random.default_rng(5))
    unpatched_lut_last = (~plan.p_level & (plan.count > 0)).sum()
    with recording.session() as rec:
        method.execute(plan, recording.device_images(16, 16, 16), recording.device_images(16, 16, 16),
                       get_backend("recording"))
    mix = [named for sig, _, named in rec.launches if sig.name == "gpuaug_weighted_mix"][0]
    assert np.count_nonzero(mix["luts"].host) == unpatched_lut_last > 0
