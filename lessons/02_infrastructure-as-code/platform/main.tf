# One platform, three environments: the workspace name picks the settings.
locals {
  settings = {
    dev     = { instance_size = "t3.micro", log_days = 7, cost_center = "engineering" }
    staging = { instance_size = "t3.small", log_days = 30, cost_center = "engineering" }
    prod    = { instance_size = "m5.large", log_days = 365, cost_center = "operations" }
  }
  env = terraform.workspace
  # lookup() with a fallback keeps `terraform validate` happy (it evaluates in "default");
  # the precondition below refuses to plan anywhere but dev, staging and prod.
  conf = lookup(local.settings, local.env, local.settings["dev"])
  tags = { env = local.env, cost-center = local.conf.cost_center }
}

module "logs" {
  source          = "../modules/secure-bucket"
  name            = "l02-${local.env}-logs"
  noncurrent_days = local.conf.log_days
  tags            = merge(local.tags, { purpose = "logs" })
}

module "artifacts" {
  source          = "../modules/secure-bucket"
  name            = "l02-${local.env}-artifacts"
  noncurrent_days = 30
  tags            = merge(local.tags, { purpose = "artifacts" })
}

resource "aws_ssm_parameter" "instance_size" {
  name = "/l02/${local.env}/app/instance-size"
  type = "String"
  # insecure_value: a plain, non-secret String (plain `value` is always treated as sensitive).
  insecure_value = local.conf.instance_size
  tags           = local.tags

  lifecycle {
    precondition {
      condition     = contains(keys(local.settings), local.env)
      error_message = "Select a workspace first: dev, staging or prod (this one is \"${local.env}\")."
    }
  }
}
