"""The training loop: data, model, optimiser, AMP, DDP, checkpoints, logs, preview.

:func:`train` takes the resolved settings (see :mod:`gpuaug.train.cli`) and returns a
summary dict. Randomness is a function of (seed, global step, rank): every step reseeds
torch (dropout, NoisyMix noise) and draws its numpy choices (Mixup/CutMix plans, NoisyMix
layer/lambda/permutation) from a generator seeded the same way, and the loader's batches
are functions of (seed, epoch, batch index); so continuing from a checkpoint replays
exactly the run that was not stopped.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from .._arrays import torch_to_device
from ..data.datafiles import printable
from ..normalization import mean_std
from .._progress import EpochBar as Progress
from . import checkpoint, distributed, outputs, samplelist
from .data import TorchLoader, denormalise, make_loader, resolve_data
from .evaluate import predict, summarize
from .losses import cross_entropy, jsd_loss, mix_targets
from .models import build_model
from .noisymix import NoisyFeatureMixup
from .schedule import Schedule
from .signals import GracefulStop

LABEL_MIXING = ("mixup", "cutmix")
FINITE_CHECK_EVERY = 50  # steps between host reads of the device-side non-finite-loss flag
# Settings a resumed run must share with its checkpoint (unless --allow-changed-settings):
# they change the optimisation but not the shapes the fingerprint checks.
RESUME_SETTINGS = ("lr", "weight_decay", "momentum", "nesterov", "no_bn_decay", "schedule", "warmup_epochs",
                   "milestones", "gamma", "min_lr", "label_smoothing", "crop", "drop", "pretrained", "amp",
                   "mixing", "fractals", "normalization")


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank, 0x57E9]).generate_state(1, np.uint64)[0] >> 1)


def _amp_dtype(amp: str, device: torch.device):
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def _apply_label_mixing(method, x: torch.Tensor, labels, num_classes, rng):
    """Mixup / CutMix on the normalised NCHW batch with gpuaug's plan (one lambda and one
    permutation per batch, as the papers do); returns (images, soft targets)."""
    n, _, h, w = x.shape
    plan = method.plan(n, h, w, rng)
    perm = torch_to_device(plan.permutation, x.device)  # no host sync on CUDA
    if type(method).__name__ == "CutMix":
        top, bottom, left, right = plan.box
        x = x.clone()
        x[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
    else:
        x = plan.lam * x + (1 - plan.lam) * x[perm]
    return x, mix_targets(labels, num_classes, plan.lam, perm)


def _note_nonfinite(first_bad: torch.Tensor, loss: torch.Tensor, step: int) -> torch.Tensor:
    """The first step whose loss was not finite (-1: none yet), updated on the device."""
    return torch.where(torch.isfinite(loss.detach()) | (first_bad >= 0), first_bad, step)


def _raise_if_nonfinite(first_bad: torch.Tensor, schedule) -> None:
    """Read the flag (one host sync) and stop the run if a loss was not finite."""
    bad = int(first_bad)
    if bad >= 0:
        raise SystemExit(f"error: the loss became non-finite at step {bad} (lr {schedule.lr(bad):g}); "
                         "lower --lr or check the data")


def _write_preview(path: Path, images, labels, classes, jsd: bool, method_name: str, normalization=None) -> None:
    from ..gallery import grid

    views = list(images) if jsd else [images]
    count = min(8, views[0].shape[0])
    host = [(denormalise(v[:count], *mean_std(normalization)).cpu().numpy() * 255).round().astype(np.uint8) for v in views]
    tiles = [[h[i] for h in host] for i in range(count)]
    cols = ["clean"] + [f"aug {i}" for i in range(1, len(views))] if jsd else [method_name]
    rows = [f"{i}: {classes[int(labels[i])]}"[:16] for i in range(count)]
    buf = io.BytesIO()
    grid(tiles, rows, cols).save(buf, format="PNG")
    outputs.write_atomic(path, buf.getvalue())


def mixing_side(image_size: int) -> int:
    """Side of the mixing pictures the trainer prepares for ``image_size`` crops (52 for 48)."""
    return max(image_size, int(image_size * 256 / 224)) if image_size > 64 else image_size + 4


def _make_mixing(cfg, device):
    from ..mixing import MixingSet

    size = mixing_side(cfg.image_size)
    # The rank's own device (e.g. "cuda:1"), never a bare "cuda": a set belongs to one device.
    where = str(device) if device.type == "cuda" and cfg.loader_kind == "dali" else "cpu"
    if cfg.mixing and str(cfg.mixing).endswith(".npy"):  # PixMix's 300K Random Images array
        mixing = MixingSet.from_npy(cfg.mixing, transform="pad_crop_flip", device=where)
        if mixing.side < cfg.image_size:
            raise SystemExit(f"error: the pictures of {cfg.mixing} are {mixing.side}x{mixing.side}, smaller "
                             f"than --image-size {cfg.image_size} (the 300K Random Images array is for CIFAR, 32)")
        return mixing
    if cfg.mixing:
        return MixingSet.from_folder(cfg.mixing, resize=size, device=where)
    return MixingSet.fractals(cfg.fractals, size=size, seed=cfg.seed, device=where)


def _data_id(data) -> str | None:
    """What a checkpoint records of ``--data``: the absolute path (None: the built-in set)."""
    return None if data is None else str(Path(data).expanduser().resolve())


def _loader_files(loader) -> tuple[list, list, dict]:
    """(files, labels, scan skips) of an ImageFolder training loader."""
    if isinstance(loader, TorchLoader):
        ds = loader.dataset
        return [str(p) for p in ds.paths], ds.labels.tolist(), ds.skipped
    s = loader.samples
    return [str(p) for p in s.files], [int(v) for v in s.labels], s.skipped


def _resume_samples(ns, loader, saved: dict, data_id, log):
    """The training loader over the checkpoint's sample list (see :mod:`.samplelist`) when
    the files changed since it was written; ``loader`` when they did not."""
    packed = saved["extra"].get("samples")
    if packed is None or saved["extra"].get("settings", {}).get("data", data_id) != data_id:
        return loader  # a checkpoint from before lists were kept, or of other data (refused or allowed later)
    files, labels = samplelist.unpack(packed, ns.data_spec["train"])
    now, now_labels, skipped = _loader_files(loader)
    if files == now and labels == now_labels:
        return loader
    from ..data.datafiles import Samples

    gone, added = samplelist.reconcile(files, now, skipped)
    skipped = {r: kept for r, ps in skipped.items() if (kept := [p for p in ps if p not in gone])}  # gone: load time
    classes = list(saved["extra"].get("classes") or loader.classes)
    loader = make_loader(ns, True, samples=Samples(files=files, labels=labels, classes=classes, skipped=skipped))
    loader.leave_out({p: (r, -1) for p, r in gone.items()})
    log(samplelist.describe(gone, added, len(files)))
    return loader


def train(cfg) -> dict:
    """Run training as ``cfg`` says (see the module notes); returns a summary."""
    d = distributed.setup(cfg.device)
    log = print if d.main else (lambda *a, **k: None)
    out = Path(cfg.out)
    try:
        result = _train(cfg, d, out, log)
        # Every rank leaves together: a rank that tears its process group down while
        # rank 0 still writes model.pt can abort in gloo's teardown ("terminate called
        # without an active exception", seen once in CI).
        distributed.barrier(d)
        return result
    finally:
        distributed.cleanup()


def _train(cfg, d, out: Path, log) -> dict:
    from ..methods import make_method

    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / checkpoint.NAME
    saved = None
    if cfg.resume:
        try:
            saved = checkpoint.read(ckpt_path)
        except checkpoint.CheckpointError as err:
            raise SystemExit(f"error: cannot resume: {err}") from None
    # -- data ------------------------------------------------------------------------
    if d.main:
        spec = resolve_data(cfg.data, log=log)
    distributed.barrier(d)
    if not d.main:
        spec = resolve_data(cfg.data, log=lambda *a, **k: None)
    try:
        method = None if cfg.method in (None, "none") else make_method(cfg.method, **cfg.method_settings)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"error: method {cfg.method} with settings {cfg.method_settings}: {err}") from None
    label_mixing = cfg.method in LABEL_MIXING
    if label_mixing and cfg.jsd:
        raise SystemExit(f"error: {cfg.method} mixes labels; train it without --jsd")
    noisymix = cfg.method == "noisymix"
    jsd_lambda = cfg.jsd_lambda if cfg.jsd_lambda is not None else getattr(method, "jsd_lambda", 12.0)
    cfg.loader_kind = cfg.loader
    ns = SimpleNamespace(data_spec=spec, loader=cfg.loader, augment=None if label_mixing else method,
                         mixing=None, jsd=cfg.jsd, batch_size=cfg.batch_size, image_size=cfg.image_size,
                         device=d.device, workers=cfg.workers, seed=cfg.seed, shard=(d.rank, d.world),
                         crop=cfg.crop, amp_dtype=_amp_dtype(cfg.amp, d.device), normalization=cfg.normalization,
                         validate=getattr(cfg, "validate", None))
    if method is not None and getattr(method, "needs_mixing", False):
        t0 = time.time()
        ns.mixing = _make_mixing(cfg, d.device)
        log(f"mixing set: {ns.mixing!r} ({time.time() - t0:.1f} s)")
    train_loader = make_loader(ns, True)
    data_id = _data_id(cfg.data)
    if saved is not None and spec["kind"] == "folder":
        train_loader = _resume_samples(ns, train_loader, saved, data_id, log)
        per_rank = saved["extra"].get("load_skips")
        if per_rank and len(per_rank) == d.world and hasattr(train_loader, "leave_out"):
            # the files this rank skipped at load time in the epochs before the checkpoint's
            # (those of its own epoch are met again when the epoch is replayed to its batch)
            train_loader.leave_out({p: v for p, v in per_rank[d.rank].items() if v[1] < saved["epoch"]})
    for reason, files in sorted(getattr(train_loader, "skipped", {}).items()):
        log(f"skipped {len(files)} training file(s): {reason} (e.g. {printable(files[0])})")
    classes = list(train_loader.classes)
    ns.classes = classes
    val_loader = make_loader(ns, False)
    if val_loader is None:
        log(f"note: {cfg.data} has no validation split (val/): validation is skipped")
    num_classes = len(classes)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch < 1:
        raise SystemExit(f"error: fewer training images per rank than one batch of {cfg.batch_size}; "
                         "lower --batch-size")

    # -- model, optimiser --------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes, pretrained=cfg.pretrained, drop=cfg.drop)
    model = model.to(d.device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    nfm = NoisyFeatureMixup.from_config(model, method) if noisymix else None
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if (cfg.no_bn_decay and p.ndim <= 1) else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    amp_dtype = _amp_dtype(cfg.amp, d.device)
    scaler = torch.amp.GradScaler(d.device.type, enabled=amp_dtype == torch.float16)
    try:
        schedule = Schedule(cfg.schedule, cfg.lr, cfg.epochs, steps_per_epoch, cfg.warmup_epochs,
                            list(cfg.milestones or []), cfg.gamma, cfg.min_lr)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    fingerprint = {"arch": cfg.arch, "num_classes": num_classes, "method": cfg.method, "jsd": bool(cfg.jsd),
                   "batch_size": cfg.batch_size, "world_size": d.world, "image_size": cfg.image_size,
                   "seed": cfg.seed, "steps_per_epoch": steps_per_epoch, "epochs": cfg.epochs,
                   "train_images": len(getattr(train_loader, "dataset", [])) or None}

    settings = json.loads(json.dumps(
        {k: getattr(cfg, k, None) for k in RESUME_SETTINGS}
        | {"data": data_id, "loader": "torch" if isinstance(train_loader, TorchLoader) else "dali",
           "jsd_lambda": jsd_lambda if cfg.jsd else None,
           "method_settings": method.config() if method is not None and hasattr(method, "config")
           else cfg.method_settings}, default=str))

    # -- resume ---------------------------------------------------------------------------
    start_epoch, start_batch, step = 0, 0, 0
    history, partial, changed = [], None, []
    if cfg.resume:
        try:
            where = checkpoint.load(ckpt_path, model=model, optimizer=optimizer, scaler=scaler,
                                    fingerprint=fingerprint, state=saved)
        except checkpoint.CheckpointError as err:
            raise SystemExit(f"error: cannot resume: {err}") from None
        start_epoch, start_batch, step = where["epoch"], where["batch"], where["step"]
        extra = where["extra"]
        changed = checkpoint.changed_settings(extra.get("settings"), settings)
        if changed and not getattr(cfg, "allow_changed_settings", False):
            raise SystemExit(f"error: cannot resume: {ckpt_path} was trained with other settings:\n  "
                             + "\n  ".join(changed) + "\npass --allow-changed-settings to continue with this "
                             "run's settings, or give the checkpoint's")
        if "history" in extra:
            history = list(extra["history"])
        else:  # a checkpoint from before the log was kept in it: trust the log up to it
            history = [r for r in outputs.read_log(out / "train.jsonl") if r.get("epoch", 0) <= start_epoch]
        partial = extra.get("partial") if start_batch else None
        log(f"resumed from {ckpt_path}: epoch {start_epoch + 1}, batch {start_batch}, step {step}")
        if changed:
            log("settings changed on resume (--allow-changed-settings):\n  " + "\n  ".join(changed))
    elif d.main and ckpt_path.exists() and not cfg.overwrite:
        raise SystemExit(f"error: {ckpt_path} exists; pass --resume to continue that run, "
                         "--overwrite to start over, or another --out")
    if d.main:
        stale = outputs.remove_stale_temps(out)
        if stale:
            log(f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(stale)}")
        if not cfg.resume:  # a fresh run: nothing of an earlier one may pass for this one's
            for name in (checkpoint.NAME, "model.pt", "train.jsonl"):
                (out / name).unlink(missing_ok=True)

    net = model
    if d.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    if cfg.compile:
        if noisymix:
            log("note: --compile is skipped for NoisyMix (its feature-mixing hooks change every step)")
        else:
            net = torch.compile(net)

    # -- logs -------------------------------------------------------------------------------
    writer = None
    if d.main and (not cfg.resume or changed):  # a resume with the same settings keeps the file as it was
        config = ({k: v for k, v in vars(cfg).items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
                  | {"classes": classes, "world_size": d.world, "device": str(d.device),
                     "jsd_lambda": jsd_lambda if cfg.jsd else None,
                     "method_config": method.config() if method is not None and hasattr(method, "config") else None})
        if changed:
            try:
                earlier = json.loads((out / "config.json").read_text()).get("changed_on_resume", [])
            except (OSError, ValueError):
                earlier = []
            config["changed_on_resume"] = earlier + [{"epoch": start_epoch + 1, "batch": start_batch,
                                                      "changes": changed}]
        outputs.write_atomic(out / "config.json", json.dumps(config, indent=2, default=str))
    if d.main and cfg.resume:
        outputs.write_log(out / "train.jsonl", history)  # exactly the epochs the checkpoint holds
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                log("note: --tensorboard needs the tensorboard package; logging to JSON lines only")
    log_file = out / "train.jsonl"
    nparams = sum(p.numel() for p in model.parameters())
    log(f"training {cfg.arch} ({nparams / 1e6:.2f} M parameters) on {len(classes)} classes, "
        f"{steps_per_epoch} batches of {cfg.batch_size} per rank x {d.world} rank(s) on {d.device}; "
        f"method {cfg.method or 'none'}{' + JSD (lambda %g)' % jsd_lambda if cfg.jsd else ''}; "
        f"amp {str(amp_dtype).replace('torch.', '') if amp_dtype else 'off'}; loader {type(train_loader).__name__}")

    # -- loop ---------------------------------------------------------------------------------
    status = "completed"
    stop_after = cfg.stop_after_steps
    extra = {"classes": classes, "crop": cfg.crop, "normalization": cfg.normalization, "settings": settings}
    if spec["kind"] == "folder" and d.main:  # the sample list a resume reads (see .samplelist)
        extra["samples"] = samplelist.pack(spec["train"], *_loader_files(train_loader)[:2])
    may_be_empty, empty_steps = hasattr(train_loader, "empty_batches"), 0
    with GracefulStop() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            train_loader.set_epoch(epoch)
            first = start_batch if epoch == start_epoch else 0
            batches = iter(train_loader)
            if first:
                if hasattr(train_loader, "start_at"):
                    train_loader.start_at(first)
                    batches = iter(train_loader)
                else:  # a loader without positioning: replay and discard
                    for _ in range(first):
                        next(batches)
            net.train()
            progress = Progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", enabled=d.main)
            sums = torch.zeros(5, dtype=torch.float64, device=d.device)  # loss, ce, js, correct, count
            # Built once: a per-step torch.tensor(...) would be a host-to-device copy (a sync).
            zero, counts = torch.zeros((), device=d.device), {}
            first_bad = torch.full((), -1, dtype=torch.int64, device=d.device)
            resumed = first if epoch == start_epoch else 0
            if resumed and d.main and partial is not None and partial.get("epoch") == epoch:
                sums += torch.tensor(partial["sums"], dtype=torch.float64, device=d.device)  # the stopped part
            seen, b = 0, first
            for b, (images, labels) in enumerate(batches, start=first):
                empty = labels.shape[0] == 0  # every file of the batch failed to load (TorchLoader)
                if may_be_empty and d.enabled:
                    empty = distributed.any_rank(empty, d)  # the ranks skip a step together
                if empty:
                    empty_steps += 1
                    continue
                if d.main and cfg.preview and step == 0:
                    _write_preview(out / "preview.png", images, labels, classes, cfg.jsd, cfg.method or "none",
                                   cfg.normalization)
                lr = schedule.apply(optimizer, step)
                torch.manual_seed(step_seed(cfg.seed, step, d.rank))
                rng = np.random.default_rng(step_seed(cfg.seed, step, d.rank) + 1)
                x = torch.cat(images) if cfg.jsd else images
                x = x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x.contiguous()
                n = labels.shape[0]
                targets = labels
                draw = None
                if label_mixing:
                    x, targets = _apply_label_mixing(method, x, labels, num_classes, rng)
                elif nfm is not None:
                    draw = nfm.draw(n, 3 if cfg.jsd else 1, rng)
                    targets = nfm.targets(labels, num_classes, draw)
                with torch.autocast(d.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    if draw is not None:
                        gen = torch.Generator(device=d.device).manual_seed(step_seed(cfg.seed, step, d.rank) + 2)
                        with nfm.armed(draw, gen):
                            logits = net(x)
                    else:
                        logits = net(x)
                if cfg.jsd:
                    loss, parts = jsd_loss(logits, targets, jsd_lambda, cfg.label_smoothing, views=len(images) - 1)
                else:
                    loss = cross_entropy(logits, targets, cfg.label_smoothing)
                    parts = {"ce": loss.detach(), "js": zero}
                first_bad = _note_nonfinite(first_bad, loss, step)
                if (step + 1) % FINITE_CHECK_EVERY == 0:
                    _raise_if_nonfinite(first_bad, schedule)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                with torch.no_grad():
                    pred = logits[:n].argmax(1)
                    if n not in counts:
                        counts[n] = torch.tensor(float(n), dtype=torch.float64, device=d.device)
                    sums += torch.stack([loss.detach().double() * n, parts["ce"].double() * n,
                                         parts["js"].double() * n, (pred == labels).sum().double(), counts[n]])
                seen += n * d.world
                if progress.due(b + 1):
                    s = sums.tolist()
                    progress.update(b + 1, seen, {"loss": f"{s[0] / max(1, s[4]):.3f}",
                                                  "acc": f"{100 * s[3] / max(1, s[4]):.1f}%", "lr": f"{lr:.3g}"},
                                    force=True)
                if stop_after is not None and step >= stop_after:
                    stop.trip()
                if distributed.any_rank(stop.flag, d) if d.enabled else stop.flag:
                    status = "stopped"
                    break
            _raise_if_nonfinite(first_bad, schedule)  # before any checkpoint is written
            # -- a stop inside the epoch: checkpoint its position and partial sums -----------
            if status == "stopped" and b + 1 < steps_per_epoch:
                part = {"epoch": epoch, "sums": distributed.all_reduce_sum(sums.tolist(), d)}  # all ranks'
                skips = distributed.gather_objects(getattr(train_loader, "load_skip_state", {}), d)
                if d.main:
                    checkpoint.save(ckpt_path, model=model, optimizer=optimizer, scaler=scaler, step=step,
                                    epoch=epoch, batch=b + 1, fingerprint=fingerprint,
                                    extra=extra | {"history": history, "partial": part, "load_skips": skips})
                distributed.barrier(d)
                progress.close("(stopped)")
                log(f"stopped at epoch {epoch + 1}, batch {b + 1}: checkpoint {ckpt_path}; "
                    f"continue with --resume --out {out}")
                break
            # -- end of epoch (a stop on its last batch included) ----------------------------
            tot = distributed.all_reduce_sum(sums.tolist(), d)
            if tot[4] == 0:
                raise SystemExit(f"error: no training image of epoch {epoch + 1} could be loaded "
                                 f"({empty_steps} empty batch(es) skipped); check the files of {cfg.data}")
            record = {"epoch": epoch + 1, "step": step, "lr": schedule.lr(max(0, step - 1)),
                      "train_loss": tot[0] / tot[4], "train_ce": tot[1] / tot[4],
                      "train_top1": tot[3] / tot[4], "images_per_s": seen / max(1e-9, time.time() - progress.start)}
            if cfg.jsd:
                record["train_js"] = tot[2] / tot[4]
            if resumed:  # continued from a stop inside this epoch
                record["resumed_at_batch"] = resumed
                if partial is None or partial.get("epoch") != epoch:
                    record["partial"] = True  # the means cover only the batches after the resume
            progress.close(f"loss {record['train_loss']:.3f} train acc {100 * record['train_top1']:.1f}%")
            bad = getattr(train_loader, "bad_files", {})
            if bad:
                log(f"  skipped at load time so far: " + ", ".join(f"{r}: {len(f)}" for r, f in sorted(bad.items())))
            if empty_steps:  # on any rank (DDP ranks skip together)
                log(f"  steps skipped so far: {empty_steps} (every file of a batch failed to load)")
            if val_loader is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                val = summarize(predict(net, val_loader, d, amp_dtype, limit_batches=cfg.limit_val_batches))
                record.update(val_top1=1 - val["top1_error"], val_top5=1 - val["top5_error"], val_loss=val["loss"],
                              val_rms_calibration_error=val["rms_calibration_error"])
                rms = val["rms_calibration_error"]
                rms = "n/a (under 200 predictions)" if rms != rms else f"{100 * rms:.1f}%"
                log(f"  validation: top-1 {100 * record['val_top1']:.1f}%  top-5 {100 * record['val_top5']:.1f}%  "
                    f"loss {val['loss']:.3f}  RMS calibration error {rms}")
            record["time"] = time.time()
            history.append(record)
            skips = distributed.gather_objects(getattr(train_loader, "load_skip_state", {}), d)
            if d.main:
                # The checkpoint holds the log; the log is written after it. A kill between the
                # two loses nothing: --resume rewrites the log from the checkpoint.
                checkpoint.save(ckpt_path, model=model, optimizer=optimizer, scaler=scaler, step=step,
                                epoch=epoch + 1, batch=0, fingerprint=fingerprint,
                                extra=extra | {"history": history, "load_skips": skips})
                outputs.write_log(log_file, history)
                if writer is not None:
                    for k, v in record.items():
                        if k not in ("epoch", "time"):
                            writer.add_scalar(k, v, epoch + 1)
            distributed.barrier(d)
            if distributed.any_rank(stop.flag, d) if d.enabled else stop.flag:
                status = "stopped"
                log(f"stopped after epoch {epoch + 1}: checkpoint {ckpt_path}; continue with --resume --out {out}")
                break
    if writer is not None:
        writer.close()
    if d.main and status == "completed":
        outputs.save_torch(out / "model.pt", {"arch": cfg.arch, "classes": classes, "image_size": cfg.image_size,
                                              "model": checkpoint.unwrap(model).state_dict(), "crop": cfg.crop,
                                              "normalization": cfg.normalization})
    return {"status": status, "exit_status": stop.exit_status if status == "stopped" else 0,
            "history": history, "out": str(out), "step": step,
            "model": checkpoint.unwrap(model), "classes": classes}
