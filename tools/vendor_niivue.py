"""Vendor NiiVue's browser bundle into btk/app/static/vendor/niivue/, reproducibly (pinned version, checksums).

    python tools/vendor_niivue.py            # fetch with npm, verify, copy, write the notices
    python tools/vendor_niivue.py --check    # verify the vendored file against the pinned checksum only

``npm pack @niivue/niivue@VERSION`` fetches the published package; its checksum must match the pinned one,
and so must the UMD bundle taken from it (``dist/niivue.umd.js``: self-contained, no network at run time).
btk's changes to it (:data:`PATCHES`, each replacing a text that occurs once) are made on the way, and the
vendored file is pinned too (``VENDORED_SHA256``).
NiiVue's own licence (BSD-2-Clause) is in ``LICENSE`` beside it (the npm package ships none; the text is the
LICENSE file of github.com/niivue/niivue); the packages bundled into it are listed with their licences
(fetched with ``npm pack`` too) in ``THIRD-PARTY-NOTICES.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.69.0"
PACKAGE_SHA256 = "6e9a6a471b428eb3b258a0086beca9187d95e43a781a39e8a519c6da246af485"
BUNDLE_SHA256 = "47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af"
VENDORED_SHA256 = "bc62327bf818d60a5acd384e2311432ef36f8d29a3bd7b704415e8c8a7af49fb"
#: btk's changes to the bundle: (why, the text replaced, its replacement). NiiVue 0.69.0 computes the 3-D
#: gradients of every new image (two passes over its voxels, in software WebGL about 80% of the image's cost)
#: though only the gradient render shaders read them, and the default one, the only one btk app uses, does not:
#: it computes them now only for those shaders, and when a gradient opacity selects one.
PATCHES = (
    (
        "the gradients of a new image only for a render shader that reads them",
        "g===0&&(this.volumeTexture=i,this.gradientTexture=Ti({",
        "g===0&&(this.volumeTexture=i,this.gradientTexture=(this.renderShader===this.renderGradientShader||"
        "this.renderShader===this.renderGradientValuesShader?Ti:B=>B.gradientTexture)({",
    ),
    (
        "setGradientOpacity(): the gradients when it selects the gradient shader without illumination",
        "this.renderShader.use(this.gl),this.gradientTextureAmount>0&&this.refreshLayers(this.volumes[0],0)",
        "this.renderShader.use(this.gl),(this.gradientTextureAmount>0||A>0)&&this.refreshLayers(this.volumes[0],0)",
    ),
)
TARGET = Path(__file__).resolve().parents[1] / "btk" / "app" / "static" / "vendor" / "niivue"
BUNDLE = "niivue.umd.js"
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "LICENCE", "license.md")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patched(bundle: str) -> str:
    """The bundle with btk's :data:`PATCHES` made; each replaced text must occur exactly once."""
    for why, text, replacement in PATCHES:
        if bundle.count(text) != 1:
            sys.exit(f"{BUNDLE}: the text to change for {why!r} occurs {bundle.count(text)} times, not once")
        bundle = bundle.replace(text, replacement)
    return bundle


def npm_pack(spec: str, folder: Path) -> Path:
    """``npm pack SPEC`` into ``folder``; returns the tarball."""
    result = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / json.loads(result.stdout)[0]["filename"]


def bundled_packages(package: Path) -> list[str]:
    """The npm packages esbuild put into NiiVue's bundle (from the build's metafile)."""
    metafile = json.loads((package / "dist" / "metafile-esm.json").read_text())
    names = {m.group(1) for key in metafile["inputs"] if (m := re.search(r"node_modules/((@[^/]+/)?[^/]+)", key))}
    return sorted(names)


def resolved_versions(root: dict, wanted: list[str]) -> dict[str, str]:
    """The newest version of each bundled package that NiiVue's (and its dependencies') ranges allow."""
    ranges = dict(root.get("dependencies", {}))
    versions: dict[str, str] = {}
    while ranges:
        name, spec = ranges.popitem()
        if name in versions or name not in wanted:
            continue
        found = json.loads(npm(["view", f"{name}@{spec}", "version", "--json"]))
        versions[name] = found[-1] if isinstance(found, list) else found
        ranges.update(json.loads(npm(["view", f"{name}@{versions[name]}", "dependencies", "--json"]) or "{}"))
    return versions


def npm(arguments: list[str]) -> str:
    return subprocess.run(["npm", *arguments], capture_output=True, text=True, check=True).stdout.strip()


def notices(versions: dict[str, str], folder: Path) -> str:
    """Each bundled package with its licence text, from its published package."""
    sections = [
        f"Packages bundled into NiiVue {VERSION}'s niivue.umd.js (@niivue/niivue on npm), with their licences.\n"
        "Versions: the newest that NiiVue's dependency ranges allow (its build may have used older ones in range).\n"
    ]
    for name, version in sorted(versions.items()):
        tarball = npm_pack(f"{name}@{version}", folder)
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.split("/", 1)[-1] in LICENCE_NAMES]
            text = archive.extractfile(members[0]).read().decode() if members else ""  # type: ignore[union-attr]
            meta = json.loads(archive.extractfile("package/package.json").read())  # type: ignore[union-attr]
        licence = meta.get("license", "see the package")
        sections.append(f"{'=' * 78}\n{name} {version} ({licence})\n{'=' * 78}\n{text.strip() or licence}\n")
    return "\n".join(sections)


def vendor() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        tarball = npm_pack(f"@niivue/niivue@{VERSION}", folder)
        if sha256(tarball) != PACKAGE_SHA256:
            sys.exit(f"{tarball.name}: checksum {sha256(tarball)} is not the pinned {PACKAGE_SHA256}")
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
        package = folder / "package"
        if sha256(package / "dist" / BUNDLE) != BUNDLE_SHA256:
            sys.exit(f"dist/{BUNDLE}: checksum differs from the pinned {BUNDLE_SHA256}")
        meta = json.loads((package / "package.json").read_text())
        if meta.get("license") != "BSD-2-Clause":
            sys.exit(f"NiiVue's licence is now {meta.get('license')!r}: review LICENSE before vendoring")
        TARGET.mkdir(parents=True, exist_ok=True)
        bundle = patched((package / "dist" / BUNDLE).read_bytes().decode("utf-8"))
        (TARGET / BUNDLE).write_bytes(bundle.encode("utf-8"))
        if sha256(TARGET / BUNDLE) != VENDORED_SHA256:
            sys.exit(f"{BUNDLE}: the patched bundle's checksum differs from the pinned {VENDORED_SHA256}")
        versions = resolved_versions(meta, bundled_packages(package))
        (TARGET / "THIRD-PARTY-NOTICES.txt").write_text(notices(versions, folder), encoding="utf-8")
    print(f"vendored NiiVue {VERSION} into {TARGET}")


def check() -> None:
    bundle = TARGET / BUNDLE
    if not bundle.is_file() or sha256(bundle) != VENDORED_SHA256:
        sys.exit(f"{bundle}: missing or not NiiVue {VERSION}'s bundle; run python tools/vendor_niivue.py")
    if not (TARGET / "LICENSE").is_file():
        sys.exit(f"{TARGET / 'LICENSE'}: NiiVue's licence must be shipped with it")
    print(f"{bundle}: NiiVue {VERSION} with btk's patches, checksum verified")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only verify the vendored bundle")
    check() if parser.parse_args().check else vendor()
