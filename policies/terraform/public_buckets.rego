# No public buckets in production: no public ACL on an S3 bucket, no public-access block that
# lets public access through, no bucket policy granting everyone, no Azure storage open to
# anonymous readers, no GCS bucket shared with allUsers, and none of the example platform's
# `terraform_data` stand-ins marked `publicly_exposed`. Outside production the same finding is
# a warning.
#
# Input: sluice's policy input. Read: `input.terraform`, the plan as `terraform show -json
# PLANFILE` prints it (no plan, no result): `input.terraform.resource_changes[]` that are created
# or updated, by `type`: `aws_s3_bucket` and `aws_s3_bucket_acl` (`acl`),
# `aws_s3_bucket_public_access_block` (its four flags), `aws_s3_bucket_policy` (`policy`, a JSON
# string), `azurerm_storage_account` (`allow_blob_public_access`,
# `allow_nested_items_to_be_public`), `azurerm_storage_container` (`container_access_type`),
# `google_storage_bucket_iam_member`/`_binding` (`member`, `members`), `terraform_data`
# (`change.after.input.publicly_exposed`). The environment is `data.sluice.context.environment`.
package terraform.public_buckets

import rego.v1

public_acls := {"public-read", "public-read-write", "authenticated-read"}

public_block_flags := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

everyone := {"allUsers", "allAuthenticatedUsers"}

default environment := ""

environment := data.sluice.context.environment

changed_resources contains change if {
	some change in input.terraform.resource_changes
	change.mode == "managed"
	some action in change.change.actions
	action in {"create", "update"}
}

as_array(value) := value if {
	is_array(value)
} else := [value]

exposures contains {"address": change.address, "exposure": sprintf("ACL `%s`", [change.change.after.acl])} if {
	some change in changed_resources
	change.type in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	change.change.after.acl in public_acls
}

exposures contains {"address": change.address, "exposure": sprintf("`%s = false` lets public access through", [flag])} if {
	some change in changed_resources
	change.type == "aws_s3_bucket_public_access_block"
	some flag in public_block_flags
	change.change.after[flag] == false
}

# A bucket policy statement that allows anyone, with no condition narrowing it.
exposures contains {"address": change.address, "exposure": sprintf("policy statement `%s` allows every principal", [object.get(statement, "Sid", "")])} if {
	some change in changed_resources
	change.type == "aws_s3_bucket_policy"
	is_string(change.change.after.policy)
	json.is_valid(change.change.after.policy)
	document := json.unmarshal(change.change.after.policy)
	some statement in as_array(document.Statement)
	statement.Effect == "Allow"
	not statement.Condition
	grants_everyone(statement.Principal)
}

grants_everyone(principal) if principal == "*"

grants_everyone(principal) if {
	is_object(principal)
	some value in as_array(object.get(principal, "AWS", []))
	value == "*"
}

exposures contains {"address": change.address, "exposure": sprintf("`%s = true` allows anonymous reads", [flag])} if {
	some change in changed_resources
	change.type == "azurerm_storage_account"
	some flag in ["allow_blob_public_access", "allow_nested_items_to_be_public"]
	change.change.after[flag] == true
}

exposures contains {"address": change.address, "exposure": sprintf("container access type `%s`", [change.change.after.container_access_type])} if {
	some change in changed_resources
	change.type == "azurerm_storage_container"
	change.change.after.container_access_type in {"blob", "container"}
}

exposures contains {"address": change.address, "exposure": sprintf("member `%s`", [member])} if {
	some change in changed_resources
	change.type in {"google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"}
	some field in ["member", "members"]
	some member in as_array(object.get(change.change.after, field, []))
	member in everyone
}

exposures contains {"address": change.address, "exposure": "`publicly_exposed = true`"} if {
	some change in changed_resources
	change.type == "terraform_data"
	change.change.after.input.publicly_exposed == true
}

deny contains msg if {
	environment == "production"
	some found in exposures
	msg := sprintf("%s: public storage in production: %s; keep buckets private and serve through signed URLs or a CDN with an origin identity", [found.address, found.exposure])
}

warn contains msg if {
	environment != "production"
	some found in exposures
	msg := sprintf("%s: public storage: %s; production refuses this", [found.address, found.exposure])
}
