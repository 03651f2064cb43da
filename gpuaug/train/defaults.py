"""The trainer's built-in settings, read by the command line (:mod:`.cli`) and by the
recipes' provenance report (:mod:`.recipes`).

Settings resolve as: explicit command-line option > ``--recipe`` file > data-set defaults
(built-in shapes set / CIFAR) > built-in defaults (ImageNet, ResNet-50).
"""

DEFAULTS = dict(
    method="augmix", arch="resnet50", epochs=90, batch_size=256, lr=0.1, schedule="cosine", warmup_epochs=0.0,
    milestones=[], gamma=0.1, min_lr=0.0, weight_decay=1e-4, momentum=0.9, nesterov=True, no_bn_decay=False,
    label_smoothing=0.0, jsd=False, jsd_lambda=None, image_size=224, crop="auto", pretrained=False, drop=None,
    amp="auto", channels_last=True, compile=False, fractals=None, mixing=None, normalization="imagenet",
)
# The built-in shapes set (no --data): 6 epochs, about a minute on 2 free CPU cores, with
# validation accuracy rising from chance (17%) to ~40%.
SYNTHETIC_DEFAULTS = dict(arch="tiny", epochs=6, batch_size=32, lr=0.1, warmup_epochs=1.0, weight_decay=5e-4,
                          jsd=True, image_size=48, crop="pad")
# CIFAR-10/100 (32x32): the AugMix CIFAR setting; recipes refine it per method.
CIFAR_DEFAULTS = dict(arch="wrn40_2", epochs=100, batch_size=128, weight_decay=5e-4, image_size=32, crop="pad",
                      normalization="half")
