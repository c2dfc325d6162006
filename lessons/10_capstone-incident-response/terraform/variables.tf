variable "bucket" {
  description = "The orders bucket (lab buckets start with l10-)."
  type        = string
  default     = "l10-orders"
}

variable "fulfilment_queue" {
  description = "The fulfilment queue, made by the platform's stack."
  type        = string
  default     = "l10-fulfilment"
}
