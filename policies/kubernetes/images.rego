# Containers in staging and production run images pinned to a tag or digest: no `:latest`, and
# no untagged image (which means `:latest`). Images the release built are pinned to
# `name@sha256:...` by the deploy before this check, so what is left moving is an image from
# elsewhere. In dev the same finding is only a warning, so a developer can try a moving tag
# without blocking the pipeline.
#
# Input: sluice's policy input. Read: `input.kubernetes` = {"environment": "production",
# "namespace": "ml-prod", "objects": [every rendered object as it will be applied]}, and of each
# object `kind`, `metadata.name`, `metadata.namespace` (set where the manifest names one; the
# others go to `input.kubernetes.namespace`), `metadata.labels` and the containers,
# init containers and ephemeral containers of a Pod, of a workload template (Deployment,
# StatefulSet, DaemonSet, ReplicaSet, Job) or of a CronJob's job template. The environment is
# `input.kubernetes.environment`; without one, an object's label
# `platform.example.com/environment`, else its namespace (ml-dev, ml-staging, ml-prod). Objects of
# any other kind, and an input without `kubernetes`, produce no results.
package kubernetes.images

import rego.v1

namespace_environments := {"ml-dev": "dev", "ml-staging": "staging", "ml-prod": "production"}

strict_environments := {"staging", "production"}

environment_of(manifest) := environment if {
	environment := input.kubernetes.environment
	is_string(environment)
} else := label if {
	label := manifest.metadata.labels["platform.example.com/environment"]
} else := namespace_environments[manifest.metadata.namespace]

# The environment as messages name it.
environment_name(manifest) := environment_of(manifest) if {
	environment_of(manifest)
} else := "an unknown environment"

pod_spec(manifest) := manifest.spec if {
	manifest.kind == "Pod"
} else := manifest.spec.jobTemplate.spec.template.spec if {
	manifest.kind == "CronJob"
} else := manifest.spec.template.spec if {
	manifest.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
}

containers contains [manifest, container] if {
	some manifest in input.kubernetes.objects
	spec := pod_spec(manifest)
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some container in spec[field]
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
	some [manifest, container] in containers
	environment := environment_of(manifest)
	environment in strict_environments
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s in %s: container `%s` image `%s` %s; pin a version tag or a digest, or build the image in the release", [manifest.kind, manifest.metadata.name, environment, container.name, container.image, problem])
}

warn contains msg if {
	some [manifest, container] in containers
	environment := environment_name(manifest)
	not environment in strict_environments
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s in %s: container `%s` image `%s` %s; staging and production refuse this", [manifest.kind, manifest.metadata.name, environment, container.name, container.image, problem])
}
