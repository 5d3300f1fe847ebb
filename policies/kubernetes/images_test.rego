# Tests of kubernetes.images; run with `conftest verify -p policies` or `opa test policies`.
package kubernetes.images_test

import rego.v1

import data.kubernetes.images

deployment(namespace, image) := {
	"apiVersion": "apps/v1", "kind": "Deployment",
	"metadata": {"name": "serving-api", "namespace": namespace},
	"spec": {"template": {"spec": {
		"initContainers": [{"name": "fetch-model", "image": "127.0.0.1:5000/trainer:3f9c2ab"}],
		"containers": [{"name": "serving-api", "image": image}],
	}}},
}

test_pinned_tag_passes_in_production if {
	count(images.deny) == 0 with input as deployment("ml-prod", "127.0.0.1:5000/serving-api:3f9c2ab")
}

test_latest_is_denied_in_production if {
	denials := images.deny with input as deployment("ml-prod", "127.0.0.1:5000/serving-api:latest")
	denials == {"Deployment/serving-api in production: container `serving-api` image `127.0.0.1:5000/serving-api:latest` uses the moving tag `latest`; pin a version tag or a digest"}
}

test_untagged_image_is_denied_and_the_registry_port_is_not_a_tag if {
	some message in images.deny with input as deployment("ml-staging", "127.0.0.1:5000/serving-api")
	contains(message, "has no tag")
}

test_digest_passes if {
	count(images.deny) == 0 with input as deployment("ml-staging", "registry.example.com/serving-api@sha256:4f2b")
}

test_latest_in_dev_is_only_a_warning if {
	count(images.deny) == 0 with input as deployment("ml-dev", "serving-api:latest")
	count(images.warn) == 1 with input as deployment("ml-dev", "serving-api:latest")
}

test_environment_label_wins_over_namespace if {
	labelled := object.union(deployment("shared", "serving-api:latest"), {"metadata": {"name": "serving-api", "namespace": "shared", "labels": {"platform.example.com/environment": "production"}}})
	count(images.deny) == 1 with input as labelled
}

test_cronjob_containers_are_checked if {
	cronjob := {
		"kind": "CronJob", "metadata": {"name": "churn-training", "namespace": "ml-prod"},
		"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "trainer", "image": "trainer:latest"}]}}}}},
	}
	count(images.deny) == 1 with input as cronjob
}

test_objects_without_pods_are_ignored if {
	count(images.deny) == 0 with input as {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ml-prod"}, "data": {"image": "x:latest"}}
}
