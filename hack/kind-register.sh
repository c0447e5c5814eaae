#!/usr/bin/env bash
# Registers a MEC cluster in the hub: its kubeconfig in a Secret of hsn-system and a MecCluster
# pointing at it, labelled hsn.io/tier=mec (what the e2e suite's network selects). Idempotent.
#
#   hack/kind-register.sh <hub-kubeconfig> <name> <region> <member-kubeconfig> [zone]
#
# The member kubeconfig is read by the operator inside the hub, so its server must be reachable
# from there: for kind, `kind get kubeconfig --internal --name <cluster>` (the control-plane
# container's name on the shared docker network), not the 127.0.0.1 address kind writes for the
# host. Any cluster works the same way with a kubeconfig the hub can reach.
#
# The operator accepts only self-contained kubeconfigs: certificates, keys and tokens inline;
# no exec plugin, auth-provider, tokenFile or file paths (README, "Registering a MEC cluster").
# This script puts the files a kubeconfig names inline (kubectl config view --flatten) and
# keeps only its current context; a credential plugin it cannot fix: the MecCluster then
# reports KubeconfigRefused, naming the field.
set -euo pipefail

if [ "$#" -lt 4 ] || [ "$#" -gt 5 ]; then
  echo "usage: $0 <hub-kubeconfig> <name> <region> <member-kubeconfig> [zone]" >&2
  exit 2
fi
hub=$1 name=$2 region=$3 member=$4 zone=${5:-$3-1a}
ns=hsn-system

[ -r "$member" ] || { echo "$0: cannot read member kubeconfig $member" >&2; exit 1; }
k() { kubectl --kubeconfig "$hub" "$@"; }

flat=$(mktemp)
trap 'rm -f "$flat"' EXIT
kubectl --kubeconfig "$member" config view --raw --flatten --minify >"$flat"

k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "$ns" create secret generic "$name" --from-file=kubeconfig="$flat" \
  --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: hsn.io/v1alpha1
kind: MecCluster
metadata:
  name: $name
  labels: {hsn.io/tier: mec}
spec:
  kubeconfigSecretRef: {name: $name}
  region: $region
  zone: $zone
YAML
echo "registered MecCluster $name (region $region, zone $zone; Secret $ns/$name)"
