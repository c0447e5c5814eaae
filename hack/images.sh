#!/usr/bin/env bash
# Container images without a daemon or a registry: cargo-built binaries → OCI layout (umoci)
# → an OCI archive per image, named exactly as the chart, the operator and containerd's
# sandbox_image reference them, for `ctr -n k8s.io images import`.
#
#   hack/images.sh build OUT_DIR [IMAGE...]   # default: every hack/images/*.conf
#   hack/images.sh import OUT_DIR [CTR_ARG...]  # ctr [CTR_ARG...] -n k8s.io images import each
#   hack/images.sh names                        # the image references, one a line
#
# Environment: IMAGE_TAG (default 0.1.0, as the Makefile), CARGO_PROFILE (debug or release,
# default release), BIN_DIR (default $CARGO_TARGET_DIR or target, then /$CARGO_PROFILE),
# TOOLS_DIR (default bin: the Go tools make tools builds, for COPY --from=tools).
#
# What an image holds comes from one place: its Dockerfile's final stage (COPY of the
# cargo-built binary and its destination, USER, ENTRYPOINT, ENV, LABEL, WORKDIR). Anything
# else in that stage is refused, so the Dockerfile cannot say more than this builds. The base
# differs: instead of distroless or debian-slim, the image holds only the shared libraries
# `ldd` names for each program in it, /etc/passwd and /etc/group (root, nonroot 65532), /tmp,
# and for each package the final stage apt-installs the host files hack/images/<image>.conf
# lists (the build refuses when the packages differ from the Dockerfile's).
# Each OUT_DIR/<image>.tar is a whole OCI layout whose index names the full reference.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

IMAGE_TAG=${IMAGE_TAG:-0.1.0}
CARGO_PROFILE=${CARGO_PROFILE:-release}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/$CARGO_PROFILE}
TOOLS_DIR=${TOOLS_DIR:-bin}
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

all_images() {
  local f
  for f in hack/images/*.conf; do basename "$f" .conf; done
}

# Reads hack/images/<image>.conf into repository, dockerfile, apt_packages, host_files,
# entrypoint, user (the last two only for images without a Dockerfile).
load_conf() {
  local conf=hack/images/$1.conf
  [ -f "$conf" ] || die "no image '$1' (known: $(all_images | tr '\n' ' '))"
  repository='' dockerfile='' user='' apt_packages=() host_files=() entrypoint=()
  # shellcheck source=/dev/null
  source "$conf"
  [ -n "$repository" ] || die "$conf: repository is empty"
}

# The final stage of a Dockerfile: continuation lines joined, comments and blanks dropped.
final_stage() {
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -Ev '^[[:space:]]*(#|$)' \
    | awk '/^FROM[[:space:]]/ { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }'
}

# Packages an `apt-get install` line names, sorted.
apt_installs() {
  sed -E 's/.*apt-get install ([^&]*).*/\1/' <<<"$1" | tr ' ' '\n' | grep -Ev '^(-.*|)$' | sort
}

# Copies a host file into the root filesystem at dest, and every library ldd names for it.
add_host_file() {
  local rootfs=$1 src=$2 dest=$3 mode lib
  [ -e "$src" ] || die "host file $src is missing (make deps installs the packages)"
  mode=$(stat -Lc %a "$src")
  install -D -m "$mode" "$src" "$rootfs$dest"
  if [ "$(head -c4 "$src" | od -An -c | tr -d ' ')" = '177ELF' ] && ldd "$src" >/dev/null 2>&1; then
    while read -r lib; do
      [ -e "$rootfs$lib" ] || install -D -m 0755 "$lib" "$rootfs$lib"
    done < <(ldd "$src" | grep -oE '/[^ ]+' | sort -u)
  fi
}

# The files every local image starts from, in place of the Dockerfile's base image.
add_base() {
  local rootfs=$1
  install -d -m 1777 "$rootfs/tmp"
  install -d -m 0755 "$rootfs/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
}

# Applies a Dockerfile's final stage to the root filesystem; sets config_args.
apply_dockerfile() {
  local rootfs=$1 image=$2 line word rest src dest bin pkgs=''
  config_args=()
  while IFS= read -r line; do
    word=${line%%[[:space:]]*} rest=${line#"$word"} rest=${rest#"${rest%%[![:space:]]*}"}
    case $word in
      FROM) ;;
      COPY)
        if [[ $rest =~ ^--from=build\ /src/target/release/([A-Za-z0-9_-]+)\ (/[^ ]+)$ ]]; then
          bin=${BASH_REMATCH[1]} dest=${BASH_REMATCH[2]} src=$BIN_DIR/${BASH_REMATCH[1]}
          [ -x "$src" ] || die "$src is missing: cargo build$([ "$CARGO_PROFILE" = release ] && echo ' --release') --bin $bin"
        elif [[ $rest =~ ^--from=tools\ /out/([A-Za-z0-9_-]+)\ (/[^ ]+)$ ]]; then
          # A Go tool the Dockerfile builds from hack/tools/<tool>: the one make tools built.
          bin=${BASH_REMATCH[1]} dest=${BASH_REMATCH[2]} src=$TOOLS_DIR/${BASH_REMATCH[1]}
          [ -x "$src" ] || die "$src is missing: make tools"
        else
          die "$dockerfile: only 'COPY --from=build /src/target/release/<bin> <dest>' and 'COPY --from=tools /out/<tool> <dest>' are built locally, not: $line"
        fi
        add_host_file "$rootfs" "$src" "$dest"
        chmod 0755 "$rootfs$dest"
        ;;
      USER) config_args+=(--config.user "$rest") ;;
      ENTRYPOINT)
        local -a ep
        mapfile -t ep < <(jq -r '.[]' <<<"$rest") || die "$dockerfile: ENTRYPOINT must be a JSON array: $line"
        config_args+=(--clear=config.entrypoint)
        for word in "${ep[@]}"; do config_args+=(--config.entrypoint "$word"); done
        ;;
      ENV) config_args+=(--config.env "$rest") ;;
      LABEL) config_args+=(--config.label "$rest") ;;
      WORKDIR) config_args+=(--config.workingdir "$rest") ;;
      RUN)
        [[ $rest == *"apt-get install"* ]] || die "$dockerfile: only apt-get install runs in the final stage, not: $line"
        pkgs+=$(apt_installs "$rest" | tr '\n' ' ')
        ;;
      *) die "$dockerfile: '$word' in the final stage is not built locally: $line" ;;
    esac
  done < <(final_stage "$dockerfile")
  [ "$pkgs" = "$(printf '%s\n' "${apt_packages[@]}" | grep -v '^$' | sort | tr '\n' ' ')" ] \
    || die "$dockerfile installs '$pkgs' but hack/images/$image.conf maps apt_packages=(${apt_packages[*]})"
}

build_one() {
  local out=$1 image=$2 work rootfs entry file ref
  load_conf "$image"
  ref=$repository:$IMAGE_TAG
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:build"
  local rootless=()
  [ "$(id -u)" = 0 ] || rootless=(--rootless)
  umoci unpack "${rootless[@]}" --image "$work/oci:build" "$work/bundle" >/dev/null
  rootfs=$work/bundle/rootfs
  add_base "$rootfs"
  for entry in "${host_files[@]}"; do
    file=${entry%%:*}
    add_host_file "$rootfs" "$file" "${entry#*:}"
  done
  config_args=()
  if [ -n "$dockerfile" ]; then
    apply_dockerfile "$rootfs" "$image"
  else
    [ -n "$user" ] && config_args+=(--config.user "$user")
    config_args+=(--clear=config.entrypoint)
    for entry in "${entrypoint[@]}"; do config_args+=(--config.entrypoint "$entry"); done
  fi
  umoci repack --refresh-bundle --image "$work/oci:build" "$work/bundle"
  umoci config --image "$work/oci:build" --os linux --architecture amd64 \
    --config.env "PATH=$BASE_PATH" "${config_args[@]}"
  umoci tag --image "$work/oci:build" "$ref"
  umoci rm --image "$work/oci:build"
  umoci gc --layout "$work/oci"
  mkdir -p "$out"
  tar -C "$work/oci" -cf "$out/$image.tar.tmp" .
  mv "$out/$image.tar.tmp" "$out/$image.tar"
  printf '%s\t%s\n' "$ref" "$out/$image.tar"
}

cmd=${1:-}
case $cmd in
  build)
    [ $# -ge 2 ] || die "usage: $0 build OUT_DIR [IMAGE...]"
    out=$2
    shift 2
    for tool in umoci jq; do command -v "$tool" >/dev/null || die "$tool is missing (make deps installs it)"; done
    images=("$@")
    [ ${#images[@]} -gt 0 ] || mapfile -t images < <(all_images)
    for image in "${images[@]}"; do build_one "$out" "$image"; done
    ;;
  import)
    [ $# -ge 2 ] || die "usage: $0 import OUT_DIR [CTR_ARG...]"
    out=$2
    shift 2
    for tar in "$out"/*.tar; do ctr "$@" -n k8s.io images import "$tar"; done
    ;;
  names)
    for image in $(all_images); do
      load_conf "$image"
      echo "$repository:$IMAGE_TAG"
    done
    ;;
  *) die "usage: $0 build OUT_DIR [IMAGE...] | import OUT_DIR [CTR_ARG...] | names" ;;
esac
