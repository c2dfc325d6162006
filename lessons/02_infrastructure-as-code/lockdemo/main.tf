# A stack whose apply takes a few seconds on purpose, so two runs can collide on its state.
# terraform_data is built into Terraform: no provider, no cloud resource, just state.
terraform {
  required_version = ">= 1.11" # the S3 backend's own lock (use_lockfile) is GA since 1.11
  backend "s3" {}
}

variable "hold_seconds" {
  description = "How long the apply keeps the state lock."
  type        = number
  default     = 8
}

variable "run_id" {
  description = "Changes on every run, so every apply really has work to do."
  type        = string
  default     = "first"
}

resource "terraform_data" "slow_change" {
  input = var.run_id

  provisioner "local-exec" {
    command = "sleep ${var.hold_seconds}"
  }
}
