#!/usr/bin/env bash
# Build what ships to a cluster, into dist/:
#   dist/feature_factory-<version>.zip              engine/ + jobs/ for `spark-submit --py-files`
#                                                   (Spark puts .zip/.egg on the executors' PYTHONPATH;
#                                                   a .whl given to --py-files is NOT imported there)
#   dist/feature_factory-<version>-py3-none-any.whl the `engine` package, for `pip install` /
#                                                   a Databricks job library (only with `all` or `wheel`)
#
#   scripts/build_dist.sh [zip|wheel|all]   (default: zip); prints the paths built, one a line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${FF_PYTHON:-$REPO/.venv/bin/python}"
WHAT="${1:-zip}"
cd "$REPO"
mkdir -p dist
VERSION="$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"

build_zip() {
  "$PY" - "dist/feature_factory-$VERSION.zip" <<'PYEOF'
import sys
import zipfile
from pathlib import Path

target = Path(sys.argv[1])
tmp = target.with_suffix(".zip.tmp")
files = sorted(
    p for pkg in ("engine", "jobs") for p in Path(pkg).rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".typed", ".yaml"}
)
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for path in files:  # fixed timestamps: the same sources give the same zip
        info = zipfile.ZipInfo(path.as_posix(), date_time=(2013, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, path.read_bytes())
tmp.replace(target)
print(target.resolve())
PYEOF
}

build_wheel() {
  rm -f dist/feature_factory-"$VERSION"-*.whl
  "$PY" -m pip wheel --quiet --no-deps . -w dist/ >&2
  rm -rf build
  ls "$REPO"/dist/feature_factory-"$VERSION"-*.whl
}

case "$WHAT" in
  zip) build_zip ;;
  wheel) build_wheel ;;
  all) build_zip; build_wheel ;;
  *) echo "usage: $0 [zip|wheel|all]" >&2; exit 2 ;;
esac
