# The smallest useful stack: a bucket for notes and a config value the app reads at start-up.
resource "aws_s3_bucket" "notes" {
  bucket        = "l02-loop-notes"
  force_destroy = true
  tags = {
    lesson = "02"
    owner  = "platform-team"
  }
}

resource "aws_ssm_parameter" "greeting" {
  name           = "/l02/loop/greeting"
  type           = "String"
  insecure_value = "hello from terraform"
  tags = {
    lesson = "02"
  }
}
