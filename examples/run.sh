#!/usr/bin/env bash
# The main job on the shipped example exam: preprocess -> candidates -> fusion -> report.
# Usage: bash examples/run.sh [OUTPUT_FOLDER [btk run options...]]   (default: examples/out)
# Brain extraction runs in HD-BET's fast mode (under a minute in all on a 2-core CPU); for the accurate mode
# (5 folds x 8 mirrorings: tens of minutes on a CPU) run e.g.  bash examples/run.sh /tmp/out --accurate
set -euo pipefail
EXAMPLES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$EXAMPLES/out}"
shift || true
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup"
btk run "$EXAMPLES/exams/TCGA-FG-6692" \
  --candidates "$EXAMPLES/candidates/TCGA-FG-6692" \
  --output "$OUT" --fast "$@"
echo
echo "Report:          $OUT/TCGA-FG-6692/report/report.html"
echo "Fused (BraTS):   $OUT/TCGA-FG-6692/fuse/TCGA-FG-6692_fused.nii.gz"
echo "Fused (native):  $OUT/TCGA-FG-6692/native/TCGA-FG-6692_fused_native.nii.gz"
echo "Cohort summary:  $OUT/summary.html"
