"""Image classification datasets as uint8 arrays (N, H, W, C), split into train/val/test.

Sources (all offline):
  fashion-mnist[:DIR]   idx .gz files (default /usr/share/datasets/fashion-mnist/, Debian's
                        dataset-fashion-mnist); falls back to Keras's download when online
  pneumonia[:PATH]      MedMNIST PneumoniaMNIST .npz, or the original chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}
  ham10000[:PATH]       HAM10000_metadata.csv + JPEGs in a folder or in zip parts; split grouped by lesion,
                        stratified by class
  PATH.npz              any MedMNIST-style .npz (train_images, train_labels, val_..., test_...)
  PATH/                 any class-folder image tree: PATH/CLASS/*.jpg or PATH/{train,val,test}/CLASS/*.jpg
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import struct
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import DatasetError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATA_ENV = "TINYDEPLOY_DATA"
PNEUMONIA_DEFAULT = Path("chest_xray_pneumonia") / "pneumoniamnist.npz"  # below data_root()
HAM_DEFAULT = Path("ham10000") / "images_200x150"


def data_root() -> Path:
    """Where datasets named without a path are looked for: $TINYDEPLOY_DATA, else the user's data directory."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tinydeploy" / "datasets"
HAM_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]  # DermaMNIST's label order
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class Dataset:
    name: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def flips_keep_labels(self) -> bool:
        """A mirrored image keeps its label: not for chest X-rays (the heart's side is anatomy)."""
        return self.name not in ("pneumonia",)

    @property
    def shift_fraction(self) -> float:
        """How far the field recipe shifts images (fraction of the side). Fashion-MNIST's garments are centred and
        size-normalised by construction, and shifts cost accuracy there (a one-off comparison while choosing the
        recipe, not kept as a script: full set, 12 epochs, no flips, int8 0.918 with 5 % shifts against 0.926
        without); photographs and X-rays are framed by hand: 10 %."""
        return 0.0 if self.name == "fashion-mnist" else 0.1

    @property
    def imbalanced(self) -> bool:
        counts = np.bincount(self.y_train, minlength=self.num_classes)
        return bool(counts.max() > 2 * max(counts.min(), 1))

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller dataset (stratification kept by a seeded shuffle) for quick runs."""
        rng = np.random.default_rng(seed)

        def take(x, y, n):
            if n is None or n >= len(y):
                return x, y
            idx = np.sort(rng.permutation(len(y))[:n])
            return x[idx], y[idx]

        xtr, ytr = take(self.x_train, self.y_train, train)
        xv, yv = take(self.x_val, self.y_val, None if test is None else max(test // 2, 1))
        xte, yte = take(self.x_test, self.y_test, test)
        return replace(self, x_train=xtr, y_train=ytr, x_val=xv, y_val=yv, x_test=xte, y_test=yte)

    def summary(self) -> dict:
        return {"name": self.name, "classes": self.class_names, "input_shape": list(self.input_shape),
                "train": int(len(self.y_train)), "val": int(len(self.y_val)), "test": int(len(self.y_test))}


# ---- preprocessing ------------------------------------------------------------------------

def resize(x: np.ndarray, size: int | None, channels: int | None) -> np.ndarray:
    """Resize and convert channels once, up front (not per epoch). uint8 in, uint8 out."""
    if x.ndim == 3:
        x = x[..., None]
    if channels and x.shape[-1] != channels:
        if channels == 1 and x.shape[-1] == 3:  # ITU-R BT.601 luma
            x = np.clip(np.round(x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)), 0, 255)
            x = x.astype(np.uint8)[..., None]
        elif channels == 3 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        else:
            raise DatasetError(f"cannot convert {x.shape[-1]} channels to {channels}", "Use --channels 1 or 3")
    if size and (x.shape[1] != size or x.shape[2] != size):
        from PIL import Image

        mode = "L" if x.shape[-1] == 1 else "RGB"
        out = np.empty((len(x), size, size, x.shape[-1]), np.uint8)
        for i, img in enumerate(x):
            im = Image.fromarray(img[..., 0] if mode == "L" else img, mode)
            r = np.asarray(im.resize((size, size), Image.BILINEAR))
            out[i] = r[..., None] if mode == "L" else r
        x = out
    return x


def prepare(ds: Dataset, size: int | None = None, channels: int | None = None) -> Dataset:
    return replace(ds, x_train=resize(ds.x_train, size, channels), x_val=resize(ds.x_val, size, channels),
                   x_test=resize(ds.x_test, size, channels))


def normalize(x: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (the models' input range; INT8 input quantization follows from it)."""
    return x.astype(np.float32) / 255.0


# ---- loaders --------------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not an idx ubyte file")
        dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
        arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(dims)
    except (OSError, ValueError, struct.error, EOFError) as e:
        raise DatasetError(f"{path} is not a valid idx .gz file ({e})", "Reinstall dataset-fashion-mnist or pass another directory") from None


def _split_val(x, y, fraction=0.1, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n = int(len(y) * fraction)
    return x[idx[n:]], y[idx[n:]], x[idx[:n]], y[idx[:n]]


def load_fashion_mnist(directory: str | Path | None = None) -> Dataset:
    d = Path(directory) if directory else FASHION_DIR
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if all((d / n).exists() for n in names):
        xtr, ytr, xte, yte = (_read_idx(d / n) for n in names)
    else:
        try:  # the Keras download, when this machine is online
            from .tfenv import import_tf

            _, keras = import_tf()
            (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
        except Exception:
            raise DatasetError(f"Fashion-MNIST not found in {d} and the Keras download failed",
                               "apt-get install dataset-fashion-mnist, or pass fashion-mnist:DIR with the four idx .gz files") from None
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DatasetError(f"Fashion-MNIST files in {d} disagree on the number of images and labels", "Reinstall the dataset")
    xtr, ytr, xv, yv = _split_val(xtr, ytr.astype(np.int64))
    return Dataset("fashion-mnist", FASHION_CLASSES, xtr[..., None], ytr, xv[..., None], yv, xte[..., None], yte.astype(np.int64))


def load_medmnist_npz(path: str | Path, name: str | None = None, class_names: list[str] | None = None) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist",
                           f"Pass the file's path (pneumonia:PATH), or set {DATA_ENV} to the folder that holds "
                           f"{PNEUMONIA_DEFAULT.parent}/ and {HAM_DEFAULT.parent}/")
    try:
        z = np.load(path)
        parts = {k: z[k] for k in ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")}
    except KeyError as e:
        raise DatasetError(f"{path} is not a MedMNIST-style .npz (missing {e})",
                           "It needs train_images, train_labels, val_images, val_labels, test_images, test_labels") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"cannot read {path} ({e})", "Check that it is a valid .npz file") from None
    y = {k: parts[f"{k}_labels"].reshape(-1).astype(np.int64) for k in ("train", "val", "test")}
    n = int(max(v.max() for v in y.values())) + 1
    x = {k: parts[f"{k}_images"] if parts[f"{k}_images"].ndim == 4 else parts[f"{k}_images"][..., None] for k in y}
    return Dataset(name or path.stem, class_names or [f"class_{i}" for i in range(n)], x["train"], y["train"], x["val"],
                   y["val"], x["test"], y["test"])


def _decode_image(data: bytes, size: int | None, channels: int, name: str = "an image") -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im = im.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"cannot decode {name} ({type(e).__name__}: {str(e)[:100]})",
                           "Remove or replace that file; the other images are fine") from None
    if size:
        im = im.resize((size, size), Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[..., None] if channels == 1 else a


def _stratified_split(labels: np.ndarray, groups: np.ndarray | None, fractions=(0.7, 0.1, 0.2), seed: int = 0):
    """Indices for train/val/test; all images of a group (a lesion) land in one split; per class."""
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(len(labels))
    splits = ([], [], [])
    for c in np.unique(labels):
        g = np.unique(groups[labels == c])
        g = g[rng.permutation(len(g))]
        n1 = int(round(len(g) * fractions[0]))
        n2 = n1 + int(round(len(g) * fractions[1]))
        for k, part in enumerate((g[:n1], g[n1:n2], g[n2:])):
            splits[k].append(part)
    member = {}
    for k, parts in enumerate(splits):
        for grp in np.concatenate(parts) if parts else []:
            member[grp] = k
    which = np.array([member[g] for g in groups])
    return [np.where(which == k)[0] for k in range(3)]


def _cache_path(key: str) -> Path:
    from ..fsutil import cache_root

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def load_ham10000(path: str | Path | None = None, size: int = 28, channels: int = 3, seed: int = 0) -> Dataset:
    """HAM10000: metadata CSV + JPEGs (in a folder or in zip parts). Split grouped by lesion_id, stratified by dx."""
    root = Path(path) if path else data_root() / HAM_DEFAULT
    meta = root / "HAM10000_metadata.csv" if root.is_dir() else root
    if not meta.exists():
        raise DatasetError(f"HAM10000 metadata not found at {meta}",
                           "Pass ham10000:DIR where DIR holds HAM10000_metadata.csv and the images or zip parts")
    folder = meta.parent
    cache = _cache_path(f"ham|{folder.resolve()}|{meta.stat().st_mtime}|{size}|{channels}|{seed}")
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return Dataset("ham10000", HAM_CLASSES, *(z[k] for k in ("xtr", "ytr", "xv", "yv", "xte", "yte")))
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"image_id", "lesion_id", "dx"} <= set(rows[0]):
        raise DatasetError(f"{meta} lacks the columns image_id, lesion_id, dx", "Use the official HAM10000_metadata.csv")
    sources: dict[str, tuple[Path, str | None]] = {}
    for zp in sorted(folder.glob("*.zip")):
        try:
            with zipfile.ZipFile(zp) as z:
                for n in z.namelist():
                    stem = Path(n).stem
                    if Path(n).suffix.lower() in IMAGE_EXT:
                        sources[stem] = (zp, n)
        except zipfile.BadZipFile:
            raise DatasetError(f"{zp} is not a valid zip file", "Re-download that part") from None
    for p in folder.rglob("*"):
        if p.suffix.lower() in IMAGE_EXT:
            sources.setdefault(p.stem, (p, None))
    missing = [r["image_id"] for r in rows if r["image_id"] not in sources]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(rows)} HAM10000 images are missing (first: {missing[0]})",
                           f"Put the JPEGs or zip parts next to {meta.name}")
    from ..console import progress

    x = np.empty((len(rows), size, size, channels), np.uint8)
    open_zips: dict[Path, zipfile.ZipFile] = {}
    with progress() as prog:
        task = prog.add_task("decoding HAM10000", total=len(rows))
        for i, r in enumerate(rows):
            src, member = sources[r["image_id"]]
            if member is None:
                data = src.read_bytes()
            else:
                z = open_zips.get(src) or open_zips.setdefault(src, zipfile.ZipFile(src))
                data = z.read(member)
            x[i] = _decode_image(data, size, channels, f"{r['image_id']} ({src.name})")
            prog.advance(task)
    for z in open_zips.values():
        z.close()
    y = np.array([HAM_CLASSES.index(r["dx"]) for r in rows], np.int64)
    groups = np.array([r["lesion_id"] for r in rows])
    tr, va, te = _stratified_split(y, groups, seed=seed)
    np.savez(cache, xtr=x[tr], ytr=y[tr], xv=x[va], yv=y[va], xte=x[te], yte=y[te])
    return Dataset("ham10000", HAM_CLASSES, x[tr], y[tr], x[va], y[va], x[te], y[te])


def load_image_folder(root: str | Path, size: int = 64, channels: int = 1, seed: int = 0) -> Dataset:
    """ROOT/CLASS/*.jpg, or ROOT/{train,val,test}/CLASS/*.jpg (the chest X-ray release's layout)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a directory", "Pass a folder of class folders")
    split_dirs = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}

    def scan(d: Path):
        classes = sorted(p.name for p in d.iterdir() if p.is_dir())
        files = [(f, c) for c in classes for f in sorted((d / c).rglob("*")) if f.suffix.lower() in IMAGE_EXT]
        return classes, files

    def read(files, classes):
        x = np.stack([_decode_image(f.read_bytes(), size, channels, str(f)) for f, _ in files]) if files else \
            np.empty((0, size, size, channels), np.uint8)
        y = np.array([classes.index(c) for _, c in files], np.int64)
        return x, y

    if "train" in split_dirs and "test" in split_dirs:
        classes, _ = scan(split_dirs["train"])
        parts = {}
        for s, d in split_dirs.items():
            _, files = scan(d)
            if not files:
                raise DatasetError(f"no images under {d}", "Each split folder needs class folders with images")
            parts[s] = read(files, classes)
        if "val" not in parts:
            xtr, ytr, xv, yv = _split_val(*parts["train"], seed=seed)
            parts["train"], parts["val"] = (xtr, ytr), (xv, yv)
        return Dataset(root.name, classes, *parts["train"], *parts["val"], *parts["test"])
    classes, files = scan(root)
    if len(classes) < 2 or not files:
        raise DatasetError(f"{root} has no class folders with images", "Lay it out as ROOT/CLASS/*.jpg (two or more classes)")
    x, y = read(files, classes)
    tr, va, te = _stratified_split(y, None, fractions=(0.8, 0.1, 0.1), seed=seed)
    return Dataset(root.name, classes, x[tr], y[tr], x[va], y[va], x[te], y[te])


def load_dataset(spec: str, *, size: int | None = None, channels: int | None = None, seed: int = 0) -> Dataset:
    """Load by name[:path] or path; then resize/convert once."""
    name, _, arg = spec.partition(":")
    if name == "fashion-mnist":
        ds = load_fashion_mnist(arg or None)
    elif name == "pneumonia":
        p = Path(arg) if arg else data_root() / PNEUMONIA_DEFAULT
        ds = load_medmnist_npz(p, "pneumonia", ["normal", "pneumonia"]) if p.suffix == ".npz" else \
            load_image_folder(p, size or 28, channels or 1, seed)
        ds.name = "pneumonia"
    elif name == "ham10000":
        ds = load_ham10000(arg or None, size or 28, channels or 3, seed)
    elif spec.endswith(".npz"):
        ds = load_medmnist_npz(spec)
    elif Path(spec).is_dir():
        ds = load_image_folder(spec, size or 64, channels or 1, seed)
    else:
        raise DatasetError(f"unknown dataset {spec!r}",
                           "Use fashion-mnist[:DIR], pneumonia[:PATH], ham10000[:DIR], a MedMNIST .npz, or a class-folder directory")
    return prepare(ds, size, channels)
