"""Lesson 02: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # The module, with 30 days typed as hours.
    "02.1": '''
ex1.write("main.tf", """
module "reports" {
  source          = "../modules/secure-bucket"
  name            = "l02-ex-reports"
  noncurrent_days = 720
  tags            = { team = "data" }
}
""")
ex1.init()
ex1.apply()
''',
    # Moved, to a key of its own name: the team and the pipeline look for it elsewhere.
    "02.2": '''
ex1.write("backend.tf", """
terraform {
  backend "s3" {}
}
""")
ex1.init(backend_config=backend_config("ex-module/terraform.tfstate", lesson02.STATE_BUCKET), migrate=True)
''',
    # The environment from a -var with a default: both workspaces deploy staging (prod's apply then fails: the
    # parameter exists), and prod needs someone to remember `-var env=prod`.
    "02.3": '''
envs.write("main.tf", """
variable "env" {
  type    = string
  default = "staging"
}

locals {
  sizes = { staging = "t3.small", prod = "m5.large" }
}

resource "aws_ssm_parameter" "instance_size" {
  name           = "/l02/ex/${var.env}/instance-size"
  type           = "String"
  insecure_value = local.sizes[var.env]
  tags           = { env = var.env }
}
""")
for name in ("staging", "prod"):
    envs.workspace(name)
    envs.apply()
''',
    # The drift seen, then accepted into the state instead of undone.
    "02.4": """
result = drift.plan(detailed_exitcode=True)
drift_code = result.exit_code
drift.run("apply", "-refresh-only", "-auto-approve", "-no-color")
""",
    # Every finding skipped, with reasons that sound fine, and scanned (not applied yet).
    "02.5": '''
fix.write("main.tf", """
resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_21:uploads are re-created by the clients, old versions are not needed
  #checkov:skip=CKV_AWS_145:the default AES256 encryption is good enough for uploads
  #checkov:skip=CKV2_AWS_6:the bucket has no public policy, so the block adds nothing
  #checkov:skip=CKV2_AWS_61:objects are deleted by the app when processed
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket we do not have here
  #checkov:skip=CKV_AWS_144:cross-region replication needs a second region the lab does not have
  #checkov:skip=CKV2_AWS_62:nothing in this lab consumes bucket events at all
  bucket        = "l02-scan-uploads"
  force_destroy = true
}
""")
scanners.checkov(fix.workdir)
''',
}
