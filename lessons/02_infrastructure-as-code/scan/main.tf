# A bucket written in a hurry. A policy scanner will have opinions.
resource "aws_s3_bucket" "uploads" {
  bucket        = "l02-scan-uploads"
  force_destroy = true
}
