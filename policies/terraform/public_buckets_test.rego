# Tests of terraform.public_buckets; run with `sluice policy test policies` (or `conftest verify -p policies --data policies`).
# Each plan is given as `input.terraform` (`with input.terraform as plan`), as sluice wraps one.
package terraform.public_buckets_test

import rego.v1

import data.terraform.public_buckets

resource(type, after) := {"address": sprintf("%s.data", [type]), "mode": "managed", "type": type, "change": {"actions": ["create"], "after": after}}

production := {"environment": "production"}

test_public_acl_is_denied_in_production if {
	bucket := resource("aws_s3_bucket", {"bucket": "data", "acl": "public-read"})
	denials := public_buckets.deny with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as production
	denials == {"aws_s3_bucket.data: public storage in production: ACL `public-read`; keep buckets private and serve through signed URLs or a CDN with an origin identity"}
}

test_private_bucket_passes if {
	bucket := resource("aws_s3_bucket", {"bucket": "data", "acl": "private"})
	count(public_buckets.deny) == 0 with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as production
	count(public_buckets.warn) == 0 with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as production
}

test_public_bucket_is_a_warning_in_dev if {
	bucket := resource("aws_s3_bucket", {"bucket": "data", "acl": "public-read-write"})
	count(public_buckets.deny) == 0 with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as {"environment": "dev"}
	count(public_buckets.warn) == 1 with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as {"environment": "dev"}
}

test_weak_public_access_block_is_denied if {
	block := resource("aws_s3_bucket_public_access_block", {"block_public_acls": true, "block_public_policy": false, "ignore_public_acls": true, "restrict_public_buckets": true})
	some message in public_buckets.deny with input.terraform as {"resource_changes": [block]} with data.sluice.context as production
	contains(message, "`block_public_policy = false` lets public access through")
}

test_bucket_policy_for_everyone_is_denied_unless_conditioned if {
	open_policy := json.marshal({"Statement": [{"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}]})
	some message in public_buckets.deny with input.terraform as {"resource_changes": [resource("aws_s3_bucket_policy", {"policy": open_policy})]} with data.sluice.context as production
	contains(message, "policy statement `Everyone` allows every principal")
	narrowed := json.marshal({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})
	count(public_buckets.deny) == 0 with input.terraform as {"resource_changes": [resource("aws_s3_bucket_policy", {"policy": narrowed})]} with data.sluice.context as production
}

test_azure_and_gcp_public_storage_is_denied if {
	account := resource("azurerm_storage_account", {"name": "data", "allow_blob_public_access": true})
	member := resource("google_storage_bucket_iam_member", {"bucket": "data", "member": "allUsers", "role": "roles/storage.objectViewer"})
	count(public_buckets.deny) == 2 with input.terraform as {"resource_changes": [account, member]} with data.sluice.context as production
}

test_exposed_terraform_data_is_denied if {
	bucket := {"address": "module.mlflow.terraform_data.artifact_bucket[0]", "mode": "managed", "type": "terraform_data", "change": {"actions": ["create"], "after": {"input": {"name": "artifacts", "publicly_exposed": true}}}}
	count(public_buckets.deny) == 1 with input.terraform as {"resource_changes": [bucket]} with data.sluice.context as production
	private := json.patch(bucket, [{"op": "replace", "path": "/change/after/input/publicly_exposed", "value": false}])
	count(public_buckets.deny) == 0 with input.terraform as {"resource_changes": [private]} with data.sluice.context as production
}
