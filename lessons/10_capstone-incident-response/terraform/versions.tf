terraform {
  required_version = ">= 1.11"

  # Remote state in the lab's S3 (bucket, key and endpoint come from `terraform init -backend-config=...`),
  # with Terraform's own lock file next to it, as in lesson 02.
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = "us-east-1"
  # The lab: the endpoint comes from AWS_ENDPOINT_URL and the dummy keys from the environment.
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  max_retries                 = 2
}
