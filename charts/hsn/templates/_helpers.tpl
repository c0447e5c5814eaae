{{- define "hsn.name" -}}hsn-operator{{- end -}}

{{- define "hsn.labels" -}}
app.kubernetes.io/name: {{ include "hsn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "hsn.selector" -}}
app.kubernetes.io/name: {{ include "hsn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "hsn.fullname" -}}{{ .Release.Name }}-operator{{- end -}}

{{/*
What the operator does inside a member cluster, and so what the identity its kubeconfig for
that member names needs there (mode: member renders it), and what it needs in the hub when
the hub is a member too (localCluster.enabled). Cluster-wide because each network gets its own
namespace, hsn-<network>, created when the network is; the operator writes nothing outside
the namespaces it labels as a network's, and deletes only those it can prove it created.
*/}}
{{- define "hsn.memberRules" -}}
# Probe: the nodes (count, readiness, edge labels).
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
# One namespace per network: created, labelled, deleted with the network; kube-system's is
# read for the cluster's identity (its UID), which tells two registrations of one cluster apart.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, create, patch, delete]
# In those namespaces: the agents' ServiceAccounts, one per role (deleted when a role
# leaves the cluster) ...
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, create, patch, delete]
# ... the routes table, the ledger's genesis and peers, the network's CA certificate ...
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# ... the super nodes' identities and their ledgers' TLS certificates (two Secrets per
# network namespace): read and changed by those names only, so no other Secret of the
# member is readable ...
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [hsn-super-identities, hsn-ledger-tls]
  verbs: [get, patch]
# ... the TLS Secret and the CA ConfigMap removed, by those names, once the network's
# superNodes.ledgerTls turns false ...
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [hsn-ledger-tls]
  verbs: [delete]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [hsn-ledger-ca]
  verbs: [delete]
# ... the super nodes' Service ...
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, create, patch, delete]
# ... the agents' workloads ...
- apiGroups: [apps]
  resources: [statefulsets, daemonsets]
  verbs: [get, list, create, patch, delete]
# ... and the agents' pods, read to trust a Lease only from a pod the operator placed.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
# Super nodes' claims (superNodes.storage) and the StorageClasses they ask for, read only
# when a super pod cannot be scheduled because its claim is not bound, to say why.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get]
# The agents' Roles and RoleBindings (each agent may update its own role's Leases, by name),
# deleted when a role leaves the cluster.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, patch, delete]
# The agents' Leases: created and pruned by the operator, renewed by the agents. RBAC lets
# the operator grant the agents update only if it holds update itself.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch, delete]
{{- end -}}

{{/* Writes to networks and their HsnNodes: in every namespace, or in operator.watchNamespace. */}}
{{- define "hsn.networkRules" -}}
# Networks: add and remove the cleanup finalizer; write their status.
- apiGroups: [hsn.io]
  resources: [hsnnetworks]
  verbs: [patch]
- apiGroups: [hsn.io]
  resources: [hsnnetworks/finalizers]
  verbs: [update]
# One HsnNode per agent, created, updated and removed with the plan (and forged ones removed).
- apiGroups: [hsn.io]
  resources: [hsnnodes]
  verbs: [create, patch, delete, deletecollection]
- apiGroups: [hsn.io]
  resources: [hsnnetworks/status, hsnnodes/status]
  verbs: [get, patch]
{{- end -}}

{{- define "hsn.memberAccount" -}}{{ .Release.Name }}-hub-access{{- end -}}
