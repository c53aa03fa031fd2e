#!/usr/bin/env bash
# Build the end-to-end toolchain from Go modules: etcd, kube-apiserver, the
# agent-sandbox controller, the Pulumi CLI + Python language host, the
# pulumi-resource-kubernetes plugin, the YAML language host, and for the e2e node
# the kubelet and gVisor's runsc + containerd-shim-runsc-v1. One Go module per set of dependencies that
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
    for name in etcd kube-apiserver agent-sandbox-controller pulumi pulumi-resource-kubernetes pulumi-yaml kubectl kubelet gvisor; do
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

# Sources that are not Go modules: the Python language host's upstream source, kept in the
# shared mirror because the module proxy refuses its module (see tools/README.md).
UPSTREAM_DIR="${UPSTREAM_DIR:-$ROOT/../shared/upstream}"
LANGUAGE_HOST_TAG=v3.259.0
LANGUAGE_HOST_DIR="pulumi/$LANGUAGE_HOST_TAG/sdk/python/cmd"
# sha256 as listed in ../shared/upstream/README.md: a changed file is refused, not built.
LANGUAGE_HOST_FILES=(
    "af5496a36f89a58e5bc67dfeebe0053411da7dc2626107b665354b4a4c5a38e8 pulumi-language-python/main.go"
    "f33d1a121a49d5b042b472990f56de858a35ec12a7f9c67e620519fd86c8a37d pulumi-language-python-exec"
)
PULUMI_VERSION="$(module_version "$TOOLS/pulumi/go.mod" github.com/pulumi/pulumi/pkg/v3)"
PROVIDER_MODULE=github.com/pulumi/pulumi-kubernetes/provider/v4
PROVIDER_VERSION="$(module_version "$TOOLS/pulumi-kubernetes/go.mod" "$PROVIDER_MODULE")"
# The plugin reports the version it was really built from (a pseudo-version), without the "v".
PROVIDER_LDFLAGS="-s -w -X $PROVIDER_MODULE/pkg/version.Version=${PROVIDER_VERSION#v}"
PULUMI_VERSION_VAR=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
YAML_MODULE=github.com/pulumi/pulumi-yaml
YAML_VERSION="$(module_version "$TOOLS/pulumi-yaml/go.mod" "$YAML_MODULE")"
# As upstream's Makefile stamps it (pkg/version.Version, without the "v").
YAML_LDFLAGS="-s -w -X $YAML_MODULE/pkg/version.Version=${YAML_VERSION#v}"
PULUMI_LDFLAGS="-s -w -X $PULUMI_VERSION_VAR=$PULUMI_VERSION"

# name | module dir | pinned module | output binary=package ... | ldflags
# A package starting with ./ is a folder that prepare_<name> puts into the build copy.
COMPONENTS=(
    "etcd|etcd|go.etcd.io/etcd/server/v3|etcd=go.etcd.io/etcd/server/v3|-s -w"
    "kube-apiserver|kubernetes|k8s.io/kubernetes|kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver|$K8S_LDFLAGS"
    "agent-sandbox-controller|agent-sandbox|sigs.k8s.io/agent-sandbox|agent-sandbox-controller=sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller|-s -w"
    "pulumi|pulumi|github.com/pulumi/pulumi/pkg/v3|pulumi=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi-language-python=./pulumi-language-python|$PULUMI_LDFLAGS"
    "pulumi-resource-kubernetes|pulumi-kubernetes|$PROVIDER_MODULE|pulumi-resource-kubernetes=./pulumi-resource-kubernetes|$PROVIDER_LDFLAGS"
    # The YAML language host: runs the Pulumi YAML example that consumes the component package.
    "pulumi-yaml|pulumi-yaml|$YAML_MODULE|pulumi-language-yaml=$YAML_MODULE/cmd/pulumi-language-yaml|$YAML_LDFLAGS"
    # kubectl for `make bench-engine` only (the side-by-side with `pulumi up`): built on request.
    "kubectl|kubectl|k8s.io/kubectl|kubectl=./kubectl|$K8S_LDFLAGS"
    # The e2e node (tests/e2e/node.py): last, so that a cold build delays no other test.
    "kubelet|kubelet|k8s.io/kubernetes|kubelet=k8s.io/kubernetes/cmd/kubelet|$K8S_LDFLAGS"
    "gvisor|gvisor|gvisor.dev/gvisor|runsc=gvisor.dev/gvisor/runsc containerd-shim-runsc-v1=gvisor.dev/gvisor/shim|-s -w"
)

# Built only when named (`tools/build.sh kubectl`, which `make bench-engine` runs): no test needs
# them, so a cold CI run does not pay for them.
ON_REQUEST=(kubectl)

# prepare_<name> WORKDIR: put non-module sources into the build copy. Prints a reason and
# returns 2 when a source is not available (the component is then "unavailable"), 1 on a
# real failure; prints nothing on success.
prepare_pulumi() {
    local workdir="$1" src="$UPSTREAM_DIR/$LANGUAGE_HOST_DIR" entry digest file
    if [[ ! -d "$src" ]]; then
        echo "the Python language host source is not in the upstream mirror: $src does not exist (set UPSTREAM_DIR to ../shared/upstream)"
        return 2
    fi
    for entry in "${LANGUAGE_HOST_FILES[@]}"; do
        read -r digest file <<<"$entry"
        if [[ "$(sha256sum "$src/$file" 2>/dev/null | cut -d' ' -f1)" != "$digest" ]]; then
            echo "$src/$file is missing or does not match its pinned sha256 $digest"
            return 2
        fi
    done
    mkdir -p "$workdir/pulumi-language-python"
    cp "$src/pulumi-language-python/main.go" "$workdir/pulumi-language-python/"
    # The host runs programs through this shim and looks for it beside its own binary.
    install -m 0755 "$src/pulumi-language-python-exec" "$OUT/bin/pulumi-language-python-exec"
}

prepare_pulumi-resource-kubernetes() {
    local workdir="$1" dir
    # The plugin's main package embeds schema-embed.json and terraform-mapping-embed.json,
    # which upstream generates at build time from the schema.json and
    # terraform-mapping.json the module ships: copy the folder, run the generator.
    dir="$(cd "$workdir" && go mod download -json "$PROVIDER_MODULE@$PROVIDER_VERSION" 2>&1 \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    if [[ -z "$dir" || ! -f "$dir/cmd/pulumi-resource-kubernetes/generate.go" ]]; then
        echo "cannot download $PROVIDER_MODULE@$PROVIDER_VERSION"
        return 2
    fi
    rm -rf "$workdir/pulumi-resource-kubernetes"
    cp -r "$dir/cmd/pulumi-resource-kubernetes" "$workdir/"
    chmod -R u+w "$workdir/pulumi-resource-kubernetes"
    (cd "$workdir/pulumi-resource-kubernetes" && VERSION="${PROVIDER_VERSION#v}" go run -mod=readonly generate.go) >&2 || return 1
}

prepare_kubectl() {
    # upstream's kubectl main lives in k8s.io/kubernetes (staging replace block and all);
    # tools/kubectl/main.go is the same ten lines against the published k8s.io/kubectl.
    mkdir -p "$1/kubectl" && cp "$TOOLS/kubectl/main.go" "$1/kubectl/"
}

# Python dynamic providers (components/pool_readiness.py) run through the engine's
# `pulumi-resource-pulumi-python`, a shell script the CLI's releases bundle next to `pulumi`. It
# ships in the sdk/v3 module the CLI is built from (python/dist/), so it comes from the module
# cache, checked by go.sum like the rest. Cheap, so done on every run, cached CLI or not.
install_python_dynamic_provider() {
    local dir
    dir="$(cd "$TOOLS/pulumi" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" 2>/dev/null \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    if [[ -z "$dir" || ! -f "$dir/python/dist/pulumi-resource-pulumi-python" ]]; then
        echo "pulumi: cannot install pulumi-resource-pulumi-python (sdk/v3@$PULUMI_VERSION not downloadable)" >&2
        return 0
    fi
    install -m 0755 "$dir/python/dist/pulumi-resource-pulumi-python" "$OUT/bin/pulumi-resource-pulumi-python"
}

write_status() {  # name state seconds version detail binaries
    python3 - "$OUT/status/$1.json" "$@" <<'PY'
import json, sys
path, name, state, seconds, version, detail, binaries = sys.argv[1:8]
json.dump({"name": name, "state": state, "seconds": float(seconds), "version": version,
           "detail": detail, "binaries": binaries.split()}, open(path, "w"), indent=1)
PY
}

# Binaries whose version stamp differs from their component's: the language host reports
# the tag of its source, not the CLI's version.
declare -A TARGET_LDFLAGS=(
    [pulumi-language-python]="-s -w -X $PULUMI_VERSION_VAR=$LANGUAGE_HOST_TAG"
)
# What, beyond go.mod/go.sum, decides a component's binaries (part of its build stamp),
# and files it installs besides its Go binaries.
declare -A STAMP_EXTRA=(
    [pulumi]="language host $LANGUAGE_HOST_TAG ${LANGUAGE_HOST_FILES[*]} ${TARGET_LDFLAGS[*]}"
    [pulumi-resource-kubernetes]="generated for $PROVIDER_VERSION"
    [kubectl]="main.go $(sha256sum "$TOOLS/kubectl/main.go" | cut -c1-16)"
)
declare -A EXTRA_FILES=([pulumi]="pulumi-language-python-exec")

build_component() {
    local name="$1" dir="$2" module="$3" targets="$4" ldflags="$5"
    local mod="$TOOLS/$dir" version stamp binaries="" started elapsed log="$OUT/logs/$name.log"
    version="$(module_version "$mod/go.mod" "$module")"
    stamp="$(cat "$mod/go.mod" "$mod/go.sum" 2>/dev/null | sha256sum | cut -c1-16) $(go env GOVERSION) $ldflags $GOFLAGS ${STAMP_EXTRA[$name]:-}"
    local missing=0
    for target in $targets; do
        binaries+="$OUT/bin/${target%%=*} "
        [[ -x "$OUT/bin/${target%%=*}" ]] || missing=1
    done
    for file in ${EXTRA_FILES[$name]:-}; do
        [[ -x "$OUT/bin/$file" ]] || missing=1
    done
    if [[ $missing == 0 && -f "$OUT/stamps/$name" && "$(cat "$OUT/stamps/$name")" == "$stamp" ]]; then
        printf '%-28s %-36s cached\n' "$name" "$version"
        write_status "$name" built 0 "$version" "cached: binaries exist for this go.mod/go.sum" "$binaries"
        return 0
    fi

    started=$(date +%s)
    : > "$log"
    # Build in a copy: generated and copied-in sources never land in the checkout.
    # Every tools module commits its go.sum, so the build never resolves anything new.
    local workdir="$OUT/src/$dir" ok=1 reason=""
    rm -rf "$workdir" && mkdir -p "$workdir" && cp "$mod/go.mod" "$mod/go.sum" "$workdir/"
    if declare -F "prepare_$name" >/dev/null; then
        local status
        reason="$("prepare_$name" "$workdir" 2>>"$log")"; status=$?
        case $status in
            0) ;;
            2) ok=0 ;;
            *) ok=0; reason="" ;;
        esac
    fi
    for target in $targets; do
        [[ $ok == 1 ]] || break
        (cd "$workdir" && go build -mod=readonly -ldflags "${TARGET_LDFLAGS[${target%%=*}]:-$ldflags}" \
            -o "$OUT/bin/${target%%=*}" "${target#*=}" >>"$log" 2>&1) || ok=0
    done
    elapsed=$(( $(date +%s) - started ))
    if [[ $ok == 0 ]]; then
        # A module the proxy refuses (or no network) or a source missing from the mirror is
        # not a build failure: tell them apart.
        if [[ -z "$reason" ]]; then
            reason="$(grep -m1 -E 'reading .*(403|404|410)|This module version is not available|dial tcp|no such host|Could not resolve host' "$log" \
                | sed -E 's#https?://[^ ]*/(@v/[^ :]+)#\1#' | cut -c1-400)"
            [[ -z "$reason" ]] || reason="Go module download refused: $reason"
        fi
        if [[ -n "$reason" ]]; then
            write_status "$name" unavailable "$elapsed" "$version" "$reason" "$binaries"
            printf '%-28s %-36s UNAVAILABLE: %s\n' "$name" "$version" "$reason"
            return 2
        fi
        write_status "$name" failed "$elapsed" "$version" "go build failed: $(tail -3 "$log" | tr '\n' ' ')" "$binaries"
        printf '%-28s %-36s BUILD FAILED, see %s\n' "$name" "$version" "$log"
        return 1
    fi
    echo "$stamp" > "$OUT/stamps/$name"
    write_status "$name" built "$elapsed" "$version" "built in ${elapsed} s" "$binaries"
    printf '%-28s %-36s built in %6d s\n' "$name" "$version" "$elapsed"
}

total_started=$(date +%s)
failed=0 unavailable=0
echo "toolchain -> $OUT (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE), $(go env GOVERSION), $(nproc) cores)"
for entry in "${COMPONENTS[@]}"; do
    IFS='|' read -r name dir module targets ldflags <<<"$entry"
    if [[ ${#ONLY[@]} -gt 0 && ! " ${ONLY[*]} " == *" $name "* ]]; then continue; fi
    if [[ ${#ONLY[@]} -eq 0 && " ${ON_REQUEST[*]} " == *" $name "* ]]; then
        printf '%-28s %-36s on request (tools/build.sh %s)\n' "$name" "" "$name"
        continue
    fi
    build_component "$name" "$dir" "$module" "$targets" "$ldflags"
    case $? in
        0) [[ $name != pulumi ]] || install_python_dynamic_provider ;;
        1) failed=1 ;;
        2) unavailable=1 ;;
    esac
done
echo "toolchain build: $(( $(date +%s) - total_started )) s in total"
if [[ $failed == 1 ]] || [[ $STRICT == 1 && $unavailable == 1 ]]; then exit 1; fi
exit 0
