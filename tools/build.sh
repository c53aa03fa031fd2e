#!/usr/bin/env bash
# Build the end-to-end toolchain from Go modules: etcd, kube-apiserver, the
# agent-sandbox controller, the Pulumi CLI + Python language host and the
# pulumi-resource-kubernetes plugin. One Go module per set of dependencies that
# would clash (tools/<module>/go.mod); see tools/README.md.
#
# Output: $TOOLCHAIN_DIR (default ~/.cache/sandbox-infra/toolchain, outside the clone so
# that a fresh CI checkout reuses it) with bin/ and status/<name>.json,
# which the e2e tests read to skip a test with the exact reason when a piece is missing.
#
# Cached: Go's module and build caches (GOMODCACHE, GOCACHE) are reused as they are,
# and a component whose binaries exist and whose stamp (go.mod + go.sum + Go version
# + flags) is unchanged is not rebuilt at all.
#
# Exit status: 0 when every component is built or unavailable from the module proxy
# (its tests then skip with the reason); 1 when a component that could be downloaded
# fails to build (a real regression); with --strict, 1 when anything is missing.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/tools"
OUT="${TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sandbox-infra/toolchain}"
STRICT=0
ONLY=()
for arg in "$@"; do
    case "$arg" in
        --strict) STRICT=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
        *) ONLY+=("$arg") ;;
    esac
done

mkdir -p "$OUT/bin" "$OUT/status" "$OUT/stamps" "$OUT/logs" "$OUT/src"
# One build at a time per toolchain directory (several checkouts may share it).
exec 9>"$OUT/.lock"
flock 9
if ! command -v go >/dev/null; then
    echo "tools/build.sh: no Go toolchain on PATH; the e2e tests will skip" >&2
    for name in etcd kube-apiserver agent-sandbox-controller pulumi pulumi-resource-kubernetes; do
        printf '{"name": "%s", "state": "unavailable", "seconds": 0, "version": "", "detail": "no Go toolchain on PATH", "binaries": []}\n' \
            "$name" > "$OUT/status/$name.json"
    done
    exit 0
fi
export GOFLAGS="${GOFLAGS:-} -trimpath"
# Sources come from the module proxy only; nothing is fetched from VCS hosts.
export GOTOOLCHAIN=local

module_version() {  # go.mod module-path -> the version that go.mod requires
    awk -v m="$2" '$1 == "require" && $2 == m {print $3; exit} $1 == m && $2 ~ /^v/ {print $2; exit}' "$1"
}

K8S_VERSION="$(module_version "$TOOLS/kubernetes/go.mod" k8s.io/kubernetes)"
K8S_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$K8S_MINOR -X k8s.io/component-base/version.gitTreeState=clean"

# name | module dir | pinned module | output binary=package ... | ldflags
COMPONENTS=(
    "etcd|etcd|go.etcd.io/etcd/server/v3|etcd=go.etcd.io/etcd/server/v3|-s -w"
    "kube-apiserver|kubernetes|k8s.io/kubernetes|kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver|$K8S_LDFLAGS"
    "agent-sandbox-controller|agent-sandbox|sigs.k8s.io/agent-sandbox|agent-sandbox-controller=sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller|-s -w"
    "pulumi|pulumi|github.com/pulumi/pulumi/pkg/v3|pulumi=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi-language-python=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3|-s -w"
    "pulumi-resource-kubernetes|pulumi-kubernetes|github.com/pulumi/pulumi-kubernetes/provider/v4|pulumi-resource-kubernetes=github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes|-s -w"
)

write_status() {  # name state seconds version detail binaries
    python3 - "$OUT/status/$1.json" "$@" <<'PY'
import json, sys
path, name, state, seconds, version, detail, binaries = sys.argv[1:8]
json.dump({"name": name, "state": state, "seconds": float(seconds), "version": version,
           "detail": detail, "binaries": binaries.split()}, open(path, "w"), indent=1)
PY
}

build_component() {
    local name="$1" dir="$2" module="$3" targets="$4" ldflags="$5"
    local mod="$TOOLS/$dir" version stamp binaries="" started elapsed log="$OUT/logs/$name.log"
    version="$(module_version "$mod/go.mod" "$module")"
    stamp="$(cat "$mod/go.mod" "$mod/go.sum" 2>/dev/null | sha256sum | cut -c1-16) $(go env GOVERSION) $ldflags $GOFLAGS"
    local missing=0
    for target in $targets; do
        binaries+="$OUT/bin/${target%%=*} "
        [[ -x "$OUT/bin/${target%%=*}" ]] || missing=1
    done
    if [[ $missing == 0 && -f "$OUT/stamps/$name" && "$(cat "$OUT/stamps/$name")" == "$stamp" ]]; then
        printf '%-28s %-10s cached\n' "$name" "$version"
        write_status "$name" built 0 "$version" "cached: binaries exist for this go.mod/go.sum" "$binaries"
        return 0
    fi

    started=$(date +%s)
    local workdir="$mod" modflag="-mod=readonly"
    if [[ ! -f "$mod/go.sum" ]]; then
        # No committed go.sum (see that go.mod): resolve it in a scratch copy.
        workdir="$OUT/src/$dir"
        rm -rf "$workdir" && mkdir -p "$workdir" && cp "$mod/go.mod" "$workdir/"
        modflag="-mod=mod"
    fi
    : > "$log"
    local ok=1
    if [[ "$modflag" == "-mod=mod" ]]; then
        (cd "$workdir" && go mod tidy >>"$log" 2>&1) || ok=0
    fi
    for target in $targets; do
        [[ $ok == 1 ]] || break
        (cd "$workdir" && go build "$modflag" -ldflags "$ldflags" -o "$OUT/bin/${target%%=*}" "${target#*=}" >>"$log" 2>&1) || ok=0
    done
    elapsed=$(( $(date +%s) - started ))
    if [[ $ok == 0 ]]; then
        # A module the proxy refuses (or no network) is not a build failure: tell them apart.
        local reason
        reason="$(grep -m1 -E 'reading .*(403|404|410)|This module version is not available|dial tcp|no such host|Could not resolve host' "$log" \
            | sed -E 's#https?://[^ ]*/(@v/[^ :]+)#\1#' | cut -c1-400)"
        if [[ -n "$reason" ]]; then
            write_status "$name" unavailable "$elapsed" "$version" "Go module download refused: $reason" "$binaries"
            printf '%-28s %-10s UNAVAILABLE: %s\n' "$name" "$version" "$reason"
            return 2
        fi
        write_status "$name" failed "$elapsed" "$version" "go build failed: $(tail -3 "$log" | tr '\n' ' ')" "$binaries"
        printf '%-28s %-10s BUILD FAILED, see %s\n' "$name" "$version" "$log"
        return 1
    fi
    echo "$stamp" > "$OUT/stamps/$name"
    write_status "$name" built "$elapsed" "$version" "built in ${elapsed} s" "$binaries"
    printf '%-28s %-10s built in %6d s\n' "$name" "$version" "$elapsed"
}

total_started=$(date +%s)
failed=0 unavailable=0
echo "toolchain -> $OUT (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE), $(go env GOVERSION), $(nproc) cores)"
for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name dir module targets ldflags <<<"$entry"
    if [[ ${#ONLY[@]} -gt 0 && ! " ${ONLY[*]} " == *" $name "* ]]; then continue; fi
    build_component "$name" "$dir" "$module" "$targets" "$ldflags"
    case $? in 1) failed=1 ;; 2) unavailable=1 ;; esac
done
echo "toolchain build: $(( $(date +%s) - total_started )) s in total"
if [[ $failed == 1 ]] || [[ $STRICT == 1 && $unavailable == 1 ]]; then exit 1; fi
exit 0
