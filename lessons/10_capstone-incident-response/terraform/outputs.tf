output "bucket" {
  description = "The orders bucket."
  value       = module.orders_bucket.name
}

output "fulfilment_queue_arn" {
  description = "Where new orders are announced."
  value       = data.aws_sqs_queue.fulfilment.arn
}
