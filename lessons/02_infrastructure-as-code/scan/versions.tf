terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = "us-east-1"
  # The lab: the endpoint comes from AWS_ENDPOINT_URL and the dummy keys from AWS_ACCESS_KEY_ID /
  # AWS_SECRET_ACCESS_KEY (set by `make lab`). Nothing here points at a real account.
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  max_retries                 = 2
}
