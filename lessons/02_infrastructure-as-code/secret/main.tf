# A database password handed to the app through SSM Parameter Store, two ways.
variable "db_password" {
  description = "The app's database password. Never commit it: pass it as TF_VAR_db_password."
  type        = string
  sensitive   = true
}

# The key that encrypts both parameters: a customer-managed KMS key (lesson 07), not the account's AWS-managed
# aws/ssm key. Its policy says who may use it, it rotates every year, and disabling it locks the secret away.
data "aws_caller_identity" "current" {}

resource "aws_kms_key" "app_secrets" {
  description             = "l02: the app's secrets in SSM Parameter Store"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TheAccountDecidesThroughIAM"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

# 1. The usual way: `value`. The variable is sensitive, so plans and logs show (sensitive value).
resource "aws_ssm_parameter" "db_password_v1" {
  name   = "/l02/app/db-password-v1"
  type   = "SecureString"
  key_id = aws_kms_key.app_secrets.arn
  value  = var.db_password
}

# 2. Write-only (Terraform 1.11): sent to the API, never stored in the state.
#    Bump value_wo_version to send a new password.
resource "aws_ssm_parameter" "db_password" {
  name             = "/l02/app/db-password"
  type             = "SecureString"
  key_id           = aws_kms_key.app_secrets.arn
  value_wo         = var.db_password
  value_wo_version = 1
}

output "parameters" {
  description = "Where the app finds its password (the names, not the value)."
  value       = [aws_ssm_parameter.db_password_v1.name, aws_ssm_parameter.db_password.name]
}
