output "buckets" {
  description = "The environment's buckets."
  value       = [module.logs.name, module.artifacts.name]
}

output "instance_size" {
  description = "The app's instance size in this environment."
  value       = aws_ssm_parameter.instance_size.insecure_value
}
