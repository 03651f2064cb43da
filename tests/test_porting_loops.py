"""Training loops written the way the AugMix and PixMix authors' ``cifar.py``, timm's
``train.py`` (``--aug-splits 3 --jsd-loss``) and a LeNet-style script use their data run
with only the loader line changed (README "Porting a training script")."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gpuaug
from cifarfiles import write_cifar10
from imagegen import natural

CPU = dict(device="cpu", num_threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=6, test=8)
    mixing = root / "mixing"
    mixing.mkdir()
    from PIL import Image

    for i in range(4):
        Image.fromarray(natural(40, 40, 100 + i)).save(mixing / f"{i}.png")
    return SimpleNamespace(root=str(root), mixing=str(mixing))


class SmallNet(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).flatten(1))


class LeNet(torch.nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 6, 5), torch.nn.Conv2d(6, 16, 5)
        self.fc = torch.nn.Linear(16 * 5 * 5, classes)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.view(-1, 16 * 5 * 5))  # fails on channels_last activations


def evaluate(net, test_loader):
    """The authors' test(): summed loss over batches, accuracy over len(loader.dataset)."""
    net.eval()
    total_loss, total_correct = 0.0, 0
    with torch.no_grad():
        for images, targets in test_loader:
            logits = net(images)
            total_loss += float(F.cross_entropy(logits, targets).data)
            total_correct += logits.data.max(1)[1].eq(targets.data).sum().item()
    return total_loss / len(test_loader), total_correct / len(test_loader.dataset)


def sgd_with_cosine(net, loader, epochs=1):
    opt = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9, nesterov=True)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + np.cos(step / total * np.pi)))
    return opt, sched


def test_augmix_authors_loop(data):
    """AugMix's cifar.py: a list of views, torch.cat, torch.split, the JSD term."""
    args = SimpleNamespace(batch_size=10, eval_batch_size=8, aug_severity=3, mixture_width=3, mixture_depth=-1,
                           aug_prob_coeff=1.0, all_ops=False, no_jsd=False, num_workers=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_workers / pin_memory: said once, ignored
        train_loader = gpuaug.CIFARLoader(  # was: CIFAR10 + AugMixDataset + DataLoader(shuffle=True)
            data.root, args.batch_size, augment=gpuaug.AugMix(
                severity=args.aug_severity, width=args.mixture_width, depth=args.mixture_depth,
                alpha=args.aug_prob_coeff, all_ops=args.all_ops),
            jsd=not args.no_jsd, num_workers=args.num_workers, pin_memory=True, **CPU)
        test_loader = gpuaug.CIFARLoader(data.root, args.eval_batch_size, train=False,
                                         num_workers=args.num_workers, pin_memory=True, **CPU)
    net = SmallNet()
    optimizer, scheduler = sgd_with_cosine(net, train_loader)
    net.train()
    steps = 0
    for images, targets in train_loader:
        optimizer.zero_grad()
        images_all = torch.cat(images, 0)
        logits_all = net(images_all)
        logits_clean, logits_aug1, logits_aug2 = torch.split(logits_all, images[0].size(0))
        loss = F.cross_entropy(logits_clean, targets)
        p_clean, p_aug1, p_aug2 = (F.softmax(v, dim=1) for v in (logits_clean, logits_aug1, logits_aug2))
        p_mixture = torch.clamp((p_clean + p_aug1 + p_aug2) / 3.0, 1e-7, 1).log()
        loss += 12 * (F.kl_div(p_mixture, p_clean, reduction="batchmean")
                      + F.kl_div(p_mixture, p_aug1, reduction="batchmean")
                      + F.kl_div(p_mixture, p_aug2, reduction="batchmean")) / 3.0
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps += 1
        assert torch.isfinite(loss)
    assert steps == len(train_loader) == 3
    test_loss, test_acc = evaluate(net, test_loader)
    assert np.isfinite(test_loss) and 0 <= test_acc <= 1


def test_pixmix_authors_loop(data):
    """PixMix's cifar.py: one tensor per batch; mixing pictures resized to 36 and cropped to 32;
    ``--all-ops`` (store_true, default False) passed through; PGD assumes [-1, 1] inputs."""
    args = SimpleNamespace(batch_size=10, eval_batch_size=8, k=4, beta=3, aug_severity=3, all_ops=False,
                           mixing_set=data.mixing, num_workers=4)
    mixing = gpuaug.MixingSet.from_folder(args.mixing_set, resize=36)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_loader = gpuaug.CIFARLoader(  # was: CIFAR10 + PixMixDataset + DataLoader(shuffle=True)
            data.root, args.batch_size, augment=gpuaug.PixMix(k=args.k, beta=args.beta, severity=args.aug_severity,
                                                              all_ops=args.all_ops),
            mixing=mixing, num_workers=args.num_workers, pin_memory=True, **CPU)
        test_loader = gpuaug.CIFARLoader(data.root, args.eval_batch_size, train=False, **CPU)
    net = SmallNet()
    optimizer, scheduler = sgd_with_cosine(net, train_loader)
    net.train()
    for images, targets in train_loader:
        optimizer.zero_grad()
        assert images.min() >= -1 and images.max() <= 1  # the script's PGD maps back with (x + 1) / 2
        loss = F.cross_entropy(net(images), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
    test_loss, test_acc = evaluate(net, test_loader)
    assert np.isfinite(test_loss)


def test_timm_aug_splits_jsd_loop(data):
    """timm's train.py with --aug-splits 3 --jsd-loss: one (3B, ...) batch, targets repeated,
    the loss splits the logits in 3 and takes the targets of the first split."""
    args = SimpleNamespace(batch_size=10, distributed=True, workers=4, pin_mem=True, aug_splits=3, epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader_train = gpuaug.CIFARLoader(  # was: create_dataset + AugMixDataset + create_loader
            data.root, args.batch_size, augment=gpuaug.AugMix(), jsd=True, views="concat", drop_last=True,
            num_workers=args.workers, pin_memory=args.pin_mem, **CPU)
    dataset_train = loader_train.dataset
    net = SmallNet()
    optimizer = torch.optim.SGD(net.parameters(), 0.05)
    updates = []
    for epoch in range(args.epochs):
        if hasattr(dataset_train, "set_epoch"):
            dataset_train.set_epoch(epoch)
        elif args.distributed and hasattr(loader_train.sampler, "set_epoch"):
            loader_train.sampler.set_epoch(epoch)
        last_batch_idx = len(loader_train) - 1
        for batch_idx, (input, target) in enumerate(loader_train):
            output = net(input)
            split_size = output.shape[0] // args.aug_splits
            assert split_size * args.aug_splits == output.shape[0] == target.shape[0]
            logits_split = torch.split(output, split_size)
            loss = F.cross_entropy(logits_split[0], target[:split_size])
            probs = [F.softmax(v, dim=1) for v in logits_split]
            mixture = torch.clamp(torch.stack(probs).mean(0), 1e-7, 1).log()
            loss = loss + 12 * sum(F.kl_div(mixture, p, reduction="batchmean") for p in probs) / len(probs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            updates.append((epoch, batch_idx == last_batch_idx, input.size(0)))
    assert updates == [(e, i == 2, 30) for e in range(2) for i in range(3)]


def test_lenet_view_flatten_loop(data):
    """A LeNet-style script flattening with .view: contiguous NCHW, as torchvision gives."""
    train_loader = gpuaug.CIFARLoader(data.root, 10, **CPU)  # was: CIFAR10(transform) + DataLoader
    net = LeNet()
    optimizer = torch.optim.SGD(net.parameters(), 0.01)
    for images, labels in train_loader:
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()
    assert np.isfinite(evaluate(net, gpuaug.CIFARLoader(data.root, 8, train=False, **CPU))[0])
