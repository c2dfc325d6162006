variable "name" {
  description = "Bucket name; lab buckets start with l02-."
  type        = string
}

variable "noncurrent_days" {
  description = "Days an overwritten (noncurrent) object version is kept before it expires."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_days >= 1
    error_message = "noncurrent_days must be at least 1."
  }
}

variable "tags" {
  description = "Extra tags, merged over the module's own (managed-by, module)."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects (handy in a lab, risky in real AWS)."
  type        = bool
  default     = true
}
