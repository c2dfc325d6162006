# A database password handed to the app through SSM Parameter Store, two ways.
variable "db_password" {
  description = "The app's database password. Never commit it: pass it as TF_VAR_db_password."
  type        = string
  sensitive   = true
}

# Both parameters are encrypted with the team's customer-managed KMS key (lesson 07 shows why a key of your own,
# with its own policy and rotation, and not the account's AWS-managed aws/ssm key). The security team's bootstrap
# made it once (lesson02.bootstrap_secrets_key()); stacks refer to it by its alias.
locals {
  kms_key = "alias/l02-app-secrets"
}

# 1. The usual way: `value`. The variable is sensitive, so plans and logs show (sensitive value).
resource "aws_ssm_parameter" "db_password_v1" {
  name   = "/l02/app/db-password-v1"
  type   = "SecureString"
  key_id = local.kms_key
  value  = var.db_password
}

# 2. Write-only (Terraform 1.11): sent to the API, never stored in the state.
#    Bump value_wo_version to send a new password.
resource "aws_ssm_parameter" "db_password" {
  name             = "/l02/app/db-password"
  type             = "SecureString"
  key_id           = local.kms_key
  value_wo         = var.db_password
  value_wo_version = 1
}

output "parameters" {
  description = "Where the app finds its password (the names, not the value)."
  value       = [aws_ssm_parameter.db_password_v1.name, aws_ssm_parameter.db_password.name]
}
