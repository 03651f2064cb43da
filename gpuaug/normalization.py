"""The normalisation every output path applies after augmentation (ImageNet statistics,
as the papers' training code does)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
