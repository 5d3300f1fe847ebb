# Tests of kubernetes.images; run with `sluice policy test policies` or `opa test policies`.
# Each input is sluice's: the rendered objects under `input.kubernetes.objects`.
package kubernetes.images_test

import rego.v1

import data.kubernetes.images

deployment(namespace, image) := {
	"apiVersion": "apps/v1", "kind": "Deployment",
	"metadata": {"name": "serving-api", "namespace": namespace},
	"spec": {"template": {"spec": {
		"initContainers": [{"name": "fetch-model", "image": "127.0.0.1:5000/trainer@sha256:ab12"}],
		"containers": [{"name": "serving-api", "image": image}],
	}}},
}

deploy(environment, image) := {"kubernetes": {
	"environment": environment, "namespace": "ml",
	"objects": [
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ml"}, "data": {"image": "x:latest"}},
		deployment("ml", image),
	],
}}

test_latest_is_denied_in_production if {
	denials := images.deny with input as deploy("production", "127.0.0.1:5000/serving-api:latest")
	denials == {"Deployment/serving-api in production: container `serving-api` image `127.0.0.1:5000/serving-api:latest` uses the moving tag `latest`; pin a version tag or a digest, or build the image in the release"}
}

test_untagged_is_denied_in_staging_and_a_registry_port_is_not_a_tag if {
	some message in images.deny with input as deploy("staging", "127.0.0.1:5000/serving-api")
	contains(message, "has no tag, which means `latest`")
}

test_digests_and_tags_pass if {
	count(images.deny) == 0 with input as deploy("production", "registry.example.com/serving-api@sha256:4f2b")
	count(images.deny) == 0 with input as deploy("production", "127.0.0.1:5000/serving-api:3f9c2ab")
	count(images.warn) == 0 with input as deploy("production", "127.0.0.1:5000/serving-api:3f9c2ab")
}

test_latest_in_dev_is_only_a_warning if {
	count(images.deny) == 0 with input as deploy("dev", "serving-api:latest")
	warnings := images.warn with input as deploy("dev", "serving-api:latest")
	warnings == {"Deployment/serving-api in dev: container `serving-api` image `serving-api:latest` uses the moving tag `latest`; staging and production refuse this"}
}

test_without_an_environment_the_label_wins_over_the_namespace if {
	labelled := json.patch(deployment("ml-dev", "serving-api:latest"), [{"op": "add", "path": "/metadata/labels", "value": {"platform.example.com/environment": "production"}}])
	count(images.deny) == 1 with input as {"kubernetes": {"objects": [labelled]}}
	count(images.deny) == 1 with input as {"kubernetes": {"objects": [deployment("ml-prod", "serving-api:latest")]}}
	some message in images.warn with input as {"kubernetes": {"objects": [deployment("shared", "serving-api:latest")]}}
	contains(message, "Deployment/serving-api in an unknown environment")
}

test_cronjob_containers_are_checked if {
	cronjob := {
		"kind": "CronJob", "metadata": {"name": "churn-training", "namespace": "ml-prod"},
		"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "trainer", "image": "trainer:latest"}]}}}}},
	}
	count(images.deny) == 1 with input as {"kubernetes": {"environment": "production", "objects": [cronjob]}}
}

test_only_the_kubernetes_domain_is_read if {
	# One object as the whole input (conftest style) is not sluice's input.
	count(images.deny) == 0 with input as deployment("ml-prod", "serving-api:latest")
	count(images.deny) == 0 with input as {"terraform": {"resource_changes": []}, "airflow": {"environment": "production", "dags": []}}
}
