# The orders stack: the bucket the order service writes to (lesson 02's secure-bucket module) and the
# event notification that hands every new order to the fulfilment queue.

module "orders_bucket" {
  source = "../../02_infrastructure-as-code/modules/secure-bucket"
  name   = var.bucket
  tags   = { team = "orders", env = "prod" }
}

# The queue belongs to the platform team's stack (its own state); this stack only reads it.
data "aws_sqs_queue" "fulfilment" {
  name = var.fulfilment_queue
}

# Every new order (an object under orders/) becomes a message for the fulfilment worker.
# On real AWS the queue's policy must also allow s3.amazonaws.com to send to it (the platform stack's job).
resource "aws_s3_bucket_notification" "orders" {
  bucket = module.orders_bucket.name

  queue {
    id            = "new-orders-to-fulfilment"
    queue_arn     = data.aws_sqs_queue.fulfilment.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "orders/"
  }
}
