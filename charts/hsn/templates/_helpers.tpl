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
