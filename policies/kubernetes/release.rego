# The objects a release deploys to an environment run pinned images in staging and production:
# no `:latest` and no untagged image (which means `:latest`). Images the release built are
# pinned to `name@sha256:...` by the deploy before this check, so what is left moving is an image
# from elsewhere. In dev the same finding is only a warning.
#
# Input: sluice's Kubernetes policy input, `input.kubernetes` = {"environment": "production",
# "namespace": "ml-prod", "objects": [every rendered object as it will be applied]}. The
# containers read are those of Pods, workload templates (Deployment, StatefulSet, DaemonSet,
# ReplicaSet, Job) and CronJob job templates. Input of any other shape produces no results.
package kubernetes.release

import rego.v1

strict_environments := {"staging", "production"}

environment := input.kubernetes.environment

pod_spec(object) := object.spec if {
	object.kind == "Pod"
} else := object.spec.jobTemplate.spec.template.spec if {
	object.kind == "CronJob"
} else := object.spec.template.spec if {
	object.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
}

containers contains [object, container] if {
	some object in input.kubernetes.objects
	spec := pod_spec(object)
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some container in spec[field]
}

# The tag of an image reference, "" when it has none; a registry port is not a tag.
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
	some [object, container] in containers
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s in %s: container `%s` image `%s` %s; pin a version tag or a digest, or build the image in the release", [object.kind, object.metadata.name, environment, container.name, container.image, problem])
}

warn contains msg if {
	not environment in strict_environments
	some [object, container] in containers
	problem := moving_tag_problem(container.image)
	msg := sprintf("%s/%s: container `%s` image `%s` %s; staging and production refuse this", [object.kind, object.metadata.name, container.name, container.image, problem])
}
