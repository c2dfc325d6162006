# A bucket that is secure by default: versioned, encrypted, private, tagged, and with a
# lifecycle rule so old versions do not pile up (and cost money) forever.
# Every caller gets the same guarantees by writing five lines instead of fifty.

locals {
  tags = merge({ managed-by = "terraform", module = "secure-bucket" }, var.tags)
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:access logs need a second log bucket per bucket; out of scope for this lab
  #checkov:skip=CKV_AWS_144:cross-region replication needs a second region; the lab has one
  #checkov:skip=CKV2_AWS_62:no consumer listens for events in this lab
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = local.tags
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

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  # The rule needs versioning to be on first, or "noncurrent" means nothing.
  depends_on = [aws_s3_bucket_versioning.this]

  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}
