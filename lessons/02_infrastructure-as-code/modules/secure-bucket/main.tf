# A bucket that is secure by default: versioned, encrypted, private, tagged, and with a
# lifecycle rule so old versions do not pile up (and cost money) forever.
# Every caller gets the same guarantees by writing five lines instead of fifty.

locals {
  tags = merge({ managed-by = "terraform", module = "secure-bucket" }, var.tags)
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logging needs a separate log bucket; no one audits these buckets' reads in this lab
  #checkov:skip=CKV_AWS_144:cross-region replication needs a second region and doubles the bill; the lab has one region
  #checkov:skip=CKV2_AWS_62:event notifications need a consumer, and nothing in this lab consumes bucket events
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = local.tags

  # The lifecycle rule sits here, in the bucket's own (deprecated) lifecycle_rule block, on purpose: the
  # separate aws_s3_bucket_lifecycle_configuration resource, which the provider recommends, waits at least
  # 55 s after every change (10 identical reads, 5 s apart, after a 10 s pause) for real S3 to settle. The
  # emulator settles at once, so the wait buys nothing here. On real AWS, use that resource and expect the wait.
  lifecycle_rule {
    id                                     = "expire-old-versions"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7
    noncurrent_version_expiration {
      days = var.noncurrent_days
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
