"""Dataset loaders on the real files here and on small trees/zips made in the test."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from tinydeploy.compress.datasets import load_dataset, load_ham10000
from tinydeploy.errors import DatasetError

from conftest import run_cli


def test_fashion_mnist_from_debian_package():
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape[1:] == (28, 28, 1) and len(ds.y_train) + len(ds.y_val) == 60000 and len(ds.y_test) == 10000
    assert ds.class_names[9] == "Ankle boot"


def test_pneumonia_medmnist_npz_and_resize_once():
    ds = load_dataset("pneumonia", size=32, channels=3)
    assert ds.x_train.shape == (4708, 32, 32, 3) and ds.class_names == ["normal", "pneumonia"]
    assert np.bincount(ds.y_test).tolist() == [234, 390]
    assert ds.imbalanced


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "JPEG")
    return buf.getvalue()


def test_class_folder_tree_with_splits(tmp_path):
    root = tmp_path / "chest_xray"
    for split in ("train", "val", "test"):
        for cls, color in (("NORMAL", (20, 20, 20)), ("PNEUMONIA", (220, 220, 220))):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                (d / f"{i}.jpeg").write_bytes(_jpeg(color))
    ds = load_dataset(f"pneumonia:{root}", size=16, channels=1)
    assert ds.class_names == ["NORMAL", "PNEUMONIA"] and ds.x_train.shape == (6, 16, 16, 1)
    assert ds.x_test[ds.y_test == 1].mean() > ds.x_test[ds.y_test == 0].mean()
    # one unreadable image: a one-line error that names the file, exit 2
    bad = root / "train" / "NORMAL" / "1.jpeg"
    bad.write_bytes(b"not a jpeg at all")
    r = run_cli("train", "--dataset", f"pneumonia:{root}", "--size", "16", "-o", tmp_path / "m.keras",
                env={"PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2 and str(bad) in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr


def test_ham10000_zip_parts_grouped_by_lesion(tmp_path):
    rows = []
    classes = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    for part in range(2):
        with zipfile.ZipFile(tmp_path / f"part{part}.zip", "w") as z:
            for i in range(35):
                k = part * 35 + i
                dx = classes[k % 7]
                z.writestr(f"ISIC_{k:07d}.jpg", _jpeg((k * 3 % 255, 10, 10)))
                rows.append({"image_id": f"ISIC_{k:07d}", "lesion_id": f"HAM_{k // 2:07d}", "dx": dx})
    with open(tmp_path / "HAM10000_metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["image_id", "lesion_id", "dx"])
        w.writeheader()
        w.writerows(rows)
    ds = load_ham10000(tmp_path, size=8, channels=3)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 70 and ds.x_train.shape[1:] == (8, 8, 3)


def test_missing_dataset_is_one_line(tmp_path):
    r = run_cli("train", "--dataset", f"fashion-mnist:{tmp_path}", "-o", tmp_path / "m.keras", env={"PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2 and "Fashion-MNIST not found" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(DatasetError, match="MedMNIST-style"):
        np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4)))
        load_dataset(str(tmp_path / "x.npz"))


def test_default_data_location_and_corrupt_npz(tmp_path):
    """A dataset named without a path comes from $TINYDEPLOY_DATA or the user's data directory, never from a
    folder beside the checkout; a truncated .npz is one line, exit 2."""
    from tinydeploy.compress.datasets import data_root

    env = {"TINYDEPLOY_DATA": "", "XDG_DATA_HOME": str(tmp_path / "xdg"), "PYTHONWARNINGS": "ignore"}
    r = run_cli("train", "--dataset", "pneumonia", "-o", tmp_path / "m.keras", env=env)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert str(tmp_path / "xdg" / "tinydeploy" / "datasets") in r.stderr and "TINYDEPLOY_DATA" in r.stderr
    good = data_root() / "chest_xray_pneumonia" / "pneumoniamnist.npz"  # the tests' ../shared/datasets
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(good.read_bytes()[:5000])
    r = run_cli("train", "--dataset", f"pneumonia:{bad}", "-o", tmp_path / "m.keras", env={"PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr, r.stderr
