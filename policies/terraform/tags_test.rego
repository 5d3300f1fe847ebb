# Tests of terraform.tags; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.tags_test

import rego.v1

import data.terraform.tags

good_tags := {"owner": "ml-platform", "team": "ml-platform", "cost_center": "cc-4021", "environment": "dev", "managed_by": "sluice"}

plan_with(tag_value, actions) := {"resource_changes": [{
	"address": "module.cluster.terraform_data.control_plane",
	"mode": "managed",
	"type": "terraform_data",
	"change": {"actions": actions, "after": {"input": {"name": "ml-dev", "tags": tag_value}}},
}]}

test_complete_tags_pass if {
	count(tags.deny) == 0 with input.terraform as plan_with(good_tags, ["create"])
	count(tags.warn) == 0 with input.terraform as plan_with(good_tags, ["create"])
}

test_each_missing_tag_is_named if {
	denials := tags.deny with input.terraform as plan_with({"team": "ml-platform"}, ["create"])
	count(denials) == 3
	some owner_message in denials
	contains(owner_message, "required tag `owner` is missing")
	some cost_center_message in denials
	contains(cost_center_message, "required tag `cost_center` is missing")
	some environment_message in denials
	contains(environment_message, "required tag `environment` is missing")
}

test_empty_tag_is_denied if {
	denials := tags.deny with input.terraform as plan_with(object.union(good_tags, {"team": ""}), ["update"])
	denials == {"module.cluster.terraform_data.control_plane: tag `team` is empty; give it a value"}
}

test_unknown_environment_is_denied if {
	some message in tags.deny with input.terraform as plan_with(object.union(good_tags, {"environment": "prod"}), ["create"])
	contains(message, "tag `environment` is `prod`")
}

test_deletes_are_not_checked if {
	count(tags.deny) == 0 with input.terraform as plan_with({}, ["delete"])
}

test_provider_resources_use_top_level_tags if {
	plan := {"resource_changes": [{
		"address": "aws_s3_bucket.artifacts", "mode": "managed", "type": "aws_s3_bucket",
		"change": {"actions": ["create"], "after": {"bucket": "artifacts", "tags": {"team": "ml"}}},
	}]}
	count(tags.deny) == 3 with input.terraform as plan
}

test_missing_managed_by_is_a_warning if {
	count(tags.warn) == 1 with input.terraform as plan_with(object.remove(good_tags, ["managed_by"]), ["create"])
}

test_only_the_terraform_domain_is_read if {
	untagged := plan_with({}, ["create"])
	count(tags.deny) == 4 with input.terraform as untagged
	# A plan given as the whole input (conftest style) is not sluice's input.
	count(tags.deny) == 0 with input as untagged
	count(tags.deny) == 0 with input as {"kubernetes": {"environment": "production", "objects": [{"kind": "Deployment", "metadata": {"name": "x"}}]}}
}

test_autoscaling_tag_blocks_are_read_as_tags if {
	blocks := [{"key": key, "value": good_tags[key], "propagate_at_launch": "true"} | some key in object.keys(good_tags)]
	plan := {"resource_changes": [{
		"address": "aws_autoscaling_group.workers", "mode": "managed", "type": "aws_autoscaling_group",
		"change": {"actions": ["create"], "after": {"name": "workers", "tags": blocks}},
	}]}
	count(tags.deny) == 0 with input.terraform as plan
}

test_untaggable_resources_are_not_checked_but_null_tags_are if {
	route := {"address": "aws_route.out", "mode": "managed", "type": "aws_route", "change": {"actions": ["create"], "after": {"route_table_id": "r"}}}
	count(tags.deny) == 0 with input.terraform as {"resource_changes": [route]}
	bucket := {"address": "aws_s3_bucket.logs", "mode": "managed", "type": "aws_s3_bucket", "change": {"actions": ["create"], "after": {"bucket": "logs", "tags": null}}}
	count(tags.deny) == 4 with input.terraform as {"resource_changes": [bucket]}
}

test_data_sources_are_not_checked if {
	lookup := {"address": "data.aws_ami.base", "mode": "data", "type": "aws_ami", "change": {"actions": ["read"], "after": {"tags": {}}}}
	count(tags.deny) == 0 with input.terraform as {"resource_changes": [lookup]}
}
