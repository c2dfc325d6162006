# A database password handed to the app through SSM Parameter Store.
variable "db_password" {
  description = "The app's database password. Never commit it: pass it as TF_VAR_db_password."
  type        = string
  sensitive   = true
}

resource "aws_ssm_parameter" "db_password" {
  name  = "/l02/app/db-password"
  type  = "SecureString"
  value = var.db_password
}

output "parameter" {
  description = "Where the app finds its password (the name, not the value)."
  value       = aws_ssm_parameter.db_password.name
}
