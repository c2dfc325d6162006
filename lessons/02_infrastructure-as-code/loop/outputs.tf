output "bucket" {
  description = "The notes bucket's name."
  value       = aws_s3_bucket.notes.id
}
