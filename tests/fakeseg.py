"""Small segmentation sets in exactly the on-disk layouts of the real ones (CamVid's SegNet folders,
Cityscapes, SBD, ADE20k), for tests that run the real readers end to end. Each writer returns what
it wrote, so a test can compare the loaded tensors with it."""
import numpy as np
from PIL import Image


def pattern(*shape, seed=0, high=256):
    return np.random.default_rng(seed).integers(0, high, size=shape, dtype=np.uint8)


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def flat_jpeg(path, colour, size):
    """A one-colour JPEG (decodes to that colour within a few levels) of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=100)


def camvid_tree(base, counts=None, size=(12, 8), classes=11):
    """``base/{split,splitannot}/<name>.png``: random RGB images, labels 0..10 and 11 (void).
    Returns {split: [(name, image (H, W, 3), label (H, W))]}."""
    counts = counts or {"train": 3, "val": 2, "test": 2}
    written = {}
    for s, (split, count) in enumerate(counts.items()):
        written[split] = []
        for i in range(count):
            name = f"0001TP_{s}{i:05d}.png"
            image = pattern(size[1], size[0], 3, seed=10 * s + i)
            label = pattern(size[1], size[0], seed=100 + 10 * s + i, high=classes + 1)
            write_png(base / split / name, image)
            write_png(base / f"{split}annot" / name, label)
            written[split].append((name, image, label))
    return written


def cityscapes_tree(base, split="train", frames=(("aachen", "000000_000019"), ("bochum", "000001_000002")),
                    ids=None, size=(10, 6)):
    """``leftImg8bit/<split>/<city>/<city>_<frame>_leftImg8bit.png`` and the gtFine labelIds beside
    them; ``ids`` (H, W) raw label ids for every frame. Returns [(image path, label path, image)]."""
    ids = np.arange(size[0] * size[1], dtype=np.uint8).reshape(size[1], size[0]) % 34 if ids is None else ids
    written = []
    for k, (city, frame) in enumerate(frames):
        image = pattern(ids.shape[0], ids.shape[1], 3, seed=k)
        image_path = base / "leftImg8bit" / split / city / f"{city}_{frame}_leftImg8bit.png"
        label_path = base / "gtFine" / split / city / f"{city}_{frame}_gtFine_labelIds.png"
        write_png(image_path, image)
        write_png(label_path, ids)
        written.append((image_path, label_path, image))
    return written


def sbd_tree(base, masks, split="train", size=None):
    """torchvision's SBDataset layout: ``img/<id>.jpg`` (flat colours), ``cls/<id>.mat`` holding
    GTcls.Segmentation, ``<split>.txt``. ``masks`` {id: (H, W) uint8}. Returns {id: colour}."""
    from scipy.io import savemat

    colours = {}
    (base / "cls").mkdir(parents=True, exist_ok=True)
    for k, (image_id, mask) in enumerate(masks.items()):
        colours[image_id] = (40 * k, 200, 255 - 40 * k)
        flat_jpeg(base / "img" / f"{image_id}.jpg", colours[image_id], size or (mask.shape[1], mask.shape[0]))
        savemat(base / "cls" / f"{image_id}.mat",
                {"GTcls": {"Segmentation": mask, "Boundaries": np.zeros((1, 1)),
                           "CategoriesPresent": np.unique(mask)}})
    (base / f"{split}.txt").write_text("".join(f"{image_id}\n" for image_id in masks))
    return colours


def ade20k_tree(root, masks, folder="training"):
    """``ADEChallengeData2016/{images,annotations}/<folder>/<name>.{jpg,png}``; ``masks`` {name: raw
    (H, W) uint8}. Returns the dataset folder."""
    base = root / "ADEChallengeData2016"
    for k, (name, mask) in enumerate(masks.items()):
        flat_jpeg(base / "images" / folder / f"{name}.jpg", (30 * k, 90, 150), (mask.shape[1], mask.shape[0]))
        write_png(base / "annotations" / folder / f"{name}.png", mask)
    return base
