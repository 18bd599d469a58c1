"""Label colour tables for viewers: ITK-SNAP label descriptions and 3D Slicer colour tables."""

from __future__ import annotations

from pathlib import Path

from btk.io import atomic_path
from btk.labels import LabelConvention

#: Colour (RGB) and full name of each tissue class; the same colours as the report's figures.
TISSUE_COLOURS: dict[str, tuple[tuple[int, int, int], str]] = {
    "NCR": ((220, 40, 40), "necrotic / non-enhancing tumour core (NCR)"),
    "ED": ((60, 200, 60), "peritumoural oedema (ED)"),
    "ET": ((255, 215, 0), "enhancing tumour (ET)"),
    "RC": ((60, 120, 255), "resection cavity (RC)"),
    "NET": ((230, 120, 30), "non-enhancing tumour (NET)"),
    "CC": ((170, 80, 220), "cystic component (CC)"),
    "GTV": ((255, 60, 160), "gross tumour volume (GTV)"),
}


def label_colours(convention: LabelConvention) -> dict[int, tuple[tuple[int, int, int], str]]:
    """Label value -> (RGB colour, name) for the tissue classes of a convention."""
    return {value: TISSUE_COLOURS[tissue] for value, tissue in sorted(convention.tissues.items())}


def write_itksnap_labels(convention: LabelConvention, path: Path) -> Path:
    """An ITK-SNAP label description file (Segmentation > Import Label Descriptions)."""
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File",
        f"# btk, label convention {convention.name}",
        "# Columns = IDX -R- -G- -B- -A-- VIS MSH  LABEL",
        "################################################",
        '    0     0    0    0        0  0  0    "Clear Label"',
    ]
    for value, ((red, green, blue), name) in label_colours(convention).items():
        lines.append(f'{value:5d} {red:5d} {green:4d} {blue:4d}        1  1  1    "{name}"')
    return _write(path, lines)


def write_slicer_colour_table(convention: LabelConvention, path: Path) -> Path:
    """A 3D Slicer colour table (``.ctbl``; load it with the segmentation, or Data > Add Data)."""
    lines = [f"# btk colour table, label convention {convention.name}", "# value name R G B A", "0 background 0 0 0 0"]
    for value, ((red, green, blue), name) in label_colours(convention).items():
        short = name.rsplit("(", 1)[-1].rstrip(")")
        lines.append(f"{value} {short} {red} {green} {blue} 255")
    return _write(path, lines)


def _write(path: Path, lines: list[str]) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
