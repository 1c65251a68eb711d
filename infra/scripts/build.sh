#!/usr/bin/env bash
# `make build`: builds the three Lambda functions with `sam build` (cargo-lambda cross-compiles
# for arm64 with zig, all from PyPI in the project's .venv) and reports each function's zip size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

VENV="${VIRTUAL_ENV:-$ROOT/.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
export PATH="$VENV/bin:$PATH"
TOOLS="aws-sam-cli cargo-lambda ziglang"
STAMP="$VENV/.reimbi-build-tools"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$TOOLS" ]; then
  step "installing $TOOLS into $VENV"
  "$VENV/bin/python" -m pip install -q $TOOLS
  echo "$TOOLS" >"$STAMP"
fi
command -v cargo-lambda >/dev/null || { echo "build: cargo-lambda is not on PATH after installing it" >&2; exit 1; }

# template.yaml builds for arm64 (Graviton).
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  step "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

export SAM_CLI_TELEMETRY=0
step "sam build"
sam build --template-file template.yaml

step "artifacts (.aws-sam/build)"
"$VENV/bin/python" - <<'PY'
import io, os, sys, zipfile

build = ".aws-sam/build"
missing = []
print(f"{'function':<20} {'bootstrap':>12} {'zip':>12}")
for fn in ("WebhookFunction", "ProcessorFunction", "SettingsFunction"):
    d = os.path.join(build, fn)
    bootstrap = os.path.join(d, "bootstrap")
    if not os.path.isfile(bootstrap):
        missing.append(fn)
        continue
    # Zipped the way `sam package`/`sam deploy` uploads it.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                z.write(p, os.path.relpath(p, d))
    mib = lambda n: f"{n / 1048576:.1f} MiB"
    print(f"{fn:<20} {mib(os.path.getsize(bootstrap)):>12} {mib(len(buf.getvalue())):>12}")
if missing:
    sys.exit(f"build: no bootstrap for {', '.join(missing)}")
PY
