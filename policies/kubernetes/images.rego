# Containers in staging and production run images pinned to a tag or digest: no `:latest`, and
# no untagged image (which means `:latest`). In dev the same finding is only a warning, so a
# developer can try a moving tag without blocking the pipeline.
#
# Input: ONE Kubernetes object, as conftest gives each document of a rendered manifest
# (`kubectl kustomize platform/k8s/overlays/staging | conftest test --namespace kubernetes.images -`).
# Read: `kind`, `metadata.name`, `metadata.namespace`, `metadata.labels` and the containers,
# init containers and ephemeral containers of a Pod, of a workload template (Deployment,
# StatefulSet, DaemonSet, ReplicaSet, Job) or of a CronJob's job template. The environment is the
# label `platform.example.com/environment`, else the namespace (ml-dev, ml-staging, ml-prod).
# Objects of any other shape produce no results.
package kubernetes.images

import rego.v1

namespace_environments := {"ml-dev": "dev", "ml-staging": "staging", "ml-prod": "production"}

strict_environments := {"staging", "production"}

environment := label if {
	label := input.metadata.labels["platform.example.com/environment"]
} else := namespace_environments[input.metadata.namespace]

pod_spec := input.spec if {
	input.kind == "Pod"
} else := input.spec.jobTemplate.spec.template.spec if {
	input.kind == "CronJob"
} else := input.spec.template.spec if {
	input.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
}

containers contains container if {
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some container in pod_spec[field]
}

# The tag of an image reference, "" when it has none. The registry port (`host:5000/name`) is
# not a tag: only the last path segment is looked at.
image_tag(image) := tag if {
	not contains(image, "@")
	segments := split(image, "/")
	last := segments[count(segments) - 1]
	contains(last, ":")
	tag := split(last, ":")[1]
} else := "" if {
	not contains(image, "@")
}

moving_tag_problem(image) := "uses the moving tag `latest`" if {
	image_tag(image) == "latest"
} else := "has no tag, which means `latest`" if {
	image_tag(image) == ""
}

deny contains msg if {
	environment in strict_environments
	some container in containers
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s in %s: container `%s` image `%s` %s; pin a version tag or a digest", [input.kind, input.metadata.name, environment, container.name, container.image, problem])
}

warn contains msg if {
	not environment in strict_environments
	some container in containers
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s: container `%s` image `%s` %s; staging and production refuse this", [input.kind, input.metadata.name, container.name, container.image, problem])
}
