# Tests of kubernetes.release; run with `sluice policy test policies` or `opa test policies`.
package kubernetes.release_test

import rego.v1

import data.kubernetes.release

deploy(environment, image) := {"kubernetes": {
	"environment": environment, "namespace": "ml",
	"objects": [
		{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "x:latest"}},
		{
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "serving-api"},
			"spec": {"template": {"spec": {
				"initContainers": [{"name": "fetch-model", "image": "127.0.0.1:5000/trainer@sha256:ab12"}],
				"containers": [{"name": "serving-api", "image": image}],
			}}},
		},
	],
}}

test_latest_is_denied_in_production if {
	denials := release.deny with input as deploy("production", "127.0.0.1:5000/serving-api:latest")
	denials == {"Deployment/serving-api in production: container `serving-api` image `127.0.0.1:5000/serving-api:latest` uses the moving tag `latest`; pin a version tag or a digest, or build the image in the release"}
}

test_untagged_is_denied_in_staging_and_a_registry_port_is_not_a_tag if {
	some message in release.deny with input as deploy("staging", "127.0.0.1:5000/serving-api")
	contains(message, "has no tag")
}

test_digests_and_tags_pass if {
	count(release.deny) == 0 with input as deploy("production", "127.0.0.1:5000/serving-api@sha256:4f2b")
	count(release.deny) == 0 with input as deploy("production", "127.0.0.1:5000/serving-api:3f9c2ab")
}

test_latest_in_dev_is_a_warning if {
	count(release.deny) == 0 with input as deploy("dev", "serving-api:latest")
	count(release.warn) == 1 with input as deploy("dev", "serving-api:latest")
}

test_cronjob_containers_are_checked if {
	cronjob := {"kubernetes": {"environment": "production", "objects": [{
		"kind": "CronJob", "metadata": {"name": "churn-training"},
		"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "trainer", "image": "trainer:latest"}]}}}}},
	}]}}
	count(release.deny) == 1 with input as cronjob
}

test_other_input_is_ignored if {
	count(release.deny) == 0 with input as {"kind": "Deployment", "metadata": {"name": "x"}}
}
