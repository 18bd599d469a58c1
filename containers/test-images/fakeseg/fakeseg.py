"""A stand-in segmentation algorithm for btk's tests: reads the staged exam, thresholds it into a label map.

Usage (the first word picks the contract):
  fakeseg.py brats2025 [options]                       /input/<case>/<case>-t1c.nii.gz ... -> /output/<case>.nii.gz
  fakeseg.py infer --data_path=D --output_path=O [--parameters_file=P] [options]      (MLCube, BraTS 2023-24)
  fakeseg.py legacy MOUNT [options]                    MOUNT/{t1,t1c|t1ce,t2,flair|fla}... -> MOUNT/results/
  fakeseg.py synthesise [options]                      /input/<case>/ with three of t1n, t1c, t2w, t2f -> /output/
                                                       <case>-<missing>.nii.gz (a BraSyn image; --fault exit)
In the BraTS 2023+ layouts the case folder and the file names are found whatever the separator (- or _), and
"fakeseg: inputs NAME,..." names what was staged; with a T1c image alone, the tumour comes from the T1c.
Options: --fault exit|hang|none|shape|labels|empty   --labels 2021|2023|ped|gtv   --require-root   --probe HOST:PORT
         --fault link-passwd|link-sibling|link-host|fifo|socket|hardlink|folder-link|chatty|noise (hostile images:
           the result is a symlink to /etc/passwd, to another file of the output, to --target PATH; a FIFO; a
           socket; a second name of another file; no result but a link "results" to the folder --target PATH;
           --log-mb MB (default 100) of output before a normal result; a result of random labels, which
           compresses badly.) A device node cannot be made: the containers have no CAP_MKNOD.
         --scratch (also leave a folder of intermediate files beside the result, as many real images do)
         --write-input (write a scratch file into the input folder first, and fail if it cannot, as some images do)
         --extra-result (legacy: also write tumor_extra_class.nii.gz, whole tumour only: fewer labels)
         --weights DIR (needs DIR/model.txt, a number that scales the FLAIR threshold; DIR must be read-only)
         --labels ped: 1 ET, 2 NET (the necrosis), 3 CC (none), 4 ED; --labels gtv: 1 for the whole tumour
Only Python's standard library and numpy: NIfTI-1 is read and written by hand.
"""

import gzip
import os
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8, 512: np.uint16}


def read_nifti(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    dims = struct.unpack(endian + "8h", raw[40:56])
    datatype = struct.unpack(endian + "h", raw[70:72])[0]
    offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    slope, inter = struct.unpack(endian + "2f", raw[112:120])
    shape = dims[1 : 1 + dims[0]]
    data = np.frombuffer(raw, np.dtype(DTYPES[datatype]).newbyteorder(endian), int(np.prod(shape)), offset)
    data = data.reshape(shape, order="F").astype(np.float32)
    if slope not in (0.0, 1.0) or inter:
        data = data * (slope or 1.0) + inter
    return data


def crash():
    """Fail as real programs do: the reason on stderr, then more on stdout (which Docker may deliver later)."""
    print("fakeseg: simulated crash", file=sys.stderr, flush=True)
    time.sleep(0.5)  # so that the merged log surely ends with the stdout line
    print("fakeseg: cleaning up after the crash", flush=True)
    sys.exit(1)


def write_nifti(path, labels, dtype=np.uint8):
    """A NIfTI-1 (uint8 or float32) with an identity affine: the orchestrator must re-stamp the input's geometry."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *labels.shape, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, *((2, 8) if dtype == np.uint8 else (16, 32)))
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 0, 0, 0, 0)
    struct.pack_into("<3f", header, 108, 352.0, 1.0, 0.0)
    struct.pack_into("<h", header, 254, 1)  # sform_code
    for row, values in enumerate(np.eye(4)[:3]):
        struct.pack_into("<4f", header, 280 + 16 * row, *values)
    header[344:348] = b"n+1\x00"
    body = bytes(header) + b"\x00" * 4 + np.asarray(labels, dtype).tobytes(order="F")
    path.write_bytes(gzip.compress(body, 1) if path.name.endswith(".gz") else body)


def segment(t1c, flair, et_label, threshold=1.5):
    """Whole tumour: bright FLAIR; enhancing: bright T1c inside it; necrosis: dark T1c inside it."""
    brain = (flair > 0) | (t1c > 0)
    f, c = flair[brain], t1c[brain]
    wt = brain & (flair > f.mean() + threshold * f.std())
    et = wt & (t1c > c.mean() + 1.5 * c.std())
    ncr = wt & ~et & (t1c < c.mean() - 0.5 * c.std())
    labels = np.zeros(t1c.shape, np.uint8)
    labels[wt], labels[ncr], labels[et] = 2, 1, et_label
    return labels


#: A BraTS 2023 label map (1 NCR, 2 ED, 3 ET) renumbered into the paediatric (ET 1, NET 2, ED 4) and the
#: radiotherapy (GTV 1) conventions.
RENUMBERED = {"ped": np.array([0, 2, 4, 1], np.uint8), "gtv": np.array([0, 1, 1, 1], np.uint8)}
SUFFIXES = ("t1n", "t1c", "t2w", "t2f")


def staged(case):
    """The staged images of a BraTS 2023+ case folder by modality suffix (``-t1c.nii.gz`` or ``_t1c.nii.gz``)."""
    names = sorted(p.name for p in case.iterdir())
    print("fakeseg: inputs " + ",".join(names), flush=True)
    found = {}
    for suffix in SUFFIXES:
        for name in names:
            if name in (f"{case.name}-{suffix}.nii.gz", f"{case.name}_{suffix}.nii.gz"):
                found[suffix] = case / name
    return found


def synthesise(case, out_dir):
    """The missing modality as the mean of the three staged ones, written as <case>-<missing>.nii.gz."""
    images = staged(case)
    missing = [suffix for suffix in SUFFIXES if suffix not in images]
    if len(missing) != 1:
        sys.exit(f"fakeseg: synthesis needs exactly three inputs, got {sorted(images)}")
    data = sum(read_nifti(path) for path in images.values()) / 3.0
    out = out_dir / f"{case.name}-{missing[0]}.nii.gz"
    write_nifti(out, data, np.float32)
    print(f"fakeseg: synthesised {missing[0]} into {out}")


def find(folder, *names):
    for name in names:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.exists():
                return candidate
    sys.exit(f"fakeseg: none of {names} in {folder}: {sorted(p.name for p in folder.iterdir())}")


def probe(inputs, target):
    print(f"uid={os.getuid()} gid={os.getgid()}")
    status = Path("/proc/self/status").read_text().splitlines()
    print(*(line for line in status if line.startswith(("CapEff", "NoNewPrivs"))), sep="\n")
    interfaces = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    print("interfaces:", ",".join(interfaces))
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print("network: reachable")
    except OSError as error:
        print(f"network: unreachable ({error.__class__.__name__})")
    try:
        with open(inputs[0], "ab"):
            pass
        (inputs[0].parent / "written-by-container").write_text("x")
        print("inputs: writable")
    except OSError as error:
        print(f"inputs: read-only ({error.strerror})")


def load_weights(folder):
    """The FLAIR threshold from DIR/model.txt; the folder must be mounted read-only."""
    model = Path(folder) / "model.txt"
    if not model.is_file():
        sys.exit(f"fakeseg: no weights: {model} missing")
    try:
        (Path(folder) / "written-by-container").write_text("x")
        sys.exit("fakeseg: the weights folder is writable")
    except OSError as error:
        print(f"weights: read-only ({error.strerror})")
    threshold = float(model.read_text().strip())
    print(f"weights: threshold {threshold}")
    return threshold


def chatter(megabytes):
    """Print ``megabytes`` MB: a first line, numbered filler lines, a last line."""
    print("fakeseg: chatty first line", flush=True)
    line = "fakeseg: chatter " + "x" * 1000 + "\n"
    block = line * (2**20 // len(line))
    for _ in range(megabytes):
        sys.stdout.write(block)
    print("fakeseg: chatty last line", flush=True)


def _socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))


def _sibling(out, labels, target_name):
    real = out.parent / target_name
    write_nifti(real, labels)
    return real


HOSTILE = {
    "link-passwd": lambda out, labels, options: os.symlink("/etc/passwd", out),
    "link-sibling": lambda out, labels, options: os.symlink(_sibling(out, labels, "other.nii.gz").name, out),
    "link-host": lambda out, labels, options: os.symlink(options["target"], out),
    "fifo": lambda out, labels, options: os.mkfifo(out),
    "socket": lambda out, labels, options: _socket(out),
    "hardlink": lambda out, labels, options: os.link(_sibling(out, labels, "real.nii.gz"), out),
    "folder-link": lambda out, labels, options: os.symlink(options["target"], out.parent / "results"),
}


def main(argv):
    options = {}
    words = []
    rest = iter(argv)
    for word in rest:
        if word.startswith("--") and "=" in word:
            key, value = word[2:].split("=", 1)
            options[key] = value
        elif word in ("--fault", "--labels", "--probe", "--weights", "--target", "--log-mb"):
            options[word[2:]] = next(rest)
        elif word.startswith("--"):
            options[word[2:]] = True
        else:
            words.append(word)
    mode = words[0] if words else "brats2025"
    print(f"fakeseg: mode {mode}, options {options}", flush=True)
    if options.get("require-root") and os.getuid() != 0:
        sys.exit("fakeseg: this image needs root")
    if mode == "legacy":
        data = Path(words[1])
        t1c = find(data, "t1c.nii", "t1ce.nii", "pat_t1ce.nii")
        flair = find(data, "flair.nii", "fla.nii", "pat_flair.nii")
        out = data / "results" / "tumor_fakeseg_class.nii.gz"
    else:
        data = Path(options.get("data_path", "/input"))
        out_dir = Path(options.get("output_path", "/output"))
        case = sorted(p for p in data.iterdir() if p.is_dir())[0]
        if "parameters_file" in options:
            parameters = Path(options["parameters_file"])
            if not parameters.is_file():
                sys.exit("fakeseg: parameters file missing")
            print(f"fakeseg: parameters {parameters.name}: {parameters.read_text().strip()}")
        if mode == "synthesise":
            if options.get("fault") == "exit":
                crash()
            synthesise(case, out_dir)
            return
        images = staged(case)
        t1c = images["t1c"]
        flair = images.get("t2f", t1c)  # a T1c-only image (meningioma radiotherapy) finds the tumour in the T1c
        out = out_dir / f"{case.name}.nii.gz"
    if "probe" in options:
        probe([t1c, flair], options["probe"])
    if options.get("write-input"):
        try:
            (t1c.parent / "fakeseg-scratch.txt").write_text("written into the input folder\n")
        except OSError as error:
            sys.exit(f"fakeseg: cannot write into the input folder ({error.strerror})")
        print("fakeseg: wrote into the input folder")
    fault = options.get("fault")
    if fault == "exit":
        crash()
    if fault == "hang":
        print("fakeseg: hanging", flush=True)
        time.sleep(10**6)
    threshold = load_weights(options["weights"]) if "weights" in options else 1.5
    labels = segment(read_nifti(t1c), read_nifti(flair), 4 if options.get("labels") == "2021" else 3, threshold)
    if options.get("labels") in RENUMBERED:
        labels = RENUMBERED[options["labels"]][labels]
    if fault == "none":
        return
    if fault == "shape":
        labels = labels[:-2]
    elif fault == "labels":
        labels[labels == 2] = 7
    elif fault == "empty":
        labels[:] = 0
    elif fault == "noise":
        labels = np.random.default_rng(0).integers(0, 4, labels.shape).astype(np.uint8)
    if fault in HOSTILE:
        HOSTILE[fault](out, labels, options)
        return
    if fault == "chatty":
        chatter(int(options.get("log-mb", 100)))
    write_nifti(out, labels)
    if options.get("extra-result"):
        write_nifti(out.parent / "tumor_extra_class.nii.gz", (labels > 0).astype(np.uint8) * 2)
    if options.get("scratch"):
        (out.parent / "scratch").mkdir()
        (out.parent / "scratch" / "intermediate.txt").write_text("kept by the image\n")
    print(f"fakeseg: wrote {out} ({int((labels > 0).sum())} tumour voxels)")


if __name__ == "__main__":
    main(sys.argv[1:])
