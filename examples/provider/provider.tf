terraform {
  required_providers {
    unikube = {
      source = "unikubehq/unikube"
    }
  }
}

# The endpoint and token usually come from UNIKUBE_ENDPOINT and
# UNIKUBE_TOKEN, so no secret sits in the configuration.
provider "unikube" {
  endpoint = "https://unikube.example.com"

  # Default cluster for in-cluster applies (KUBECONFIG is honoured when
  # config_path is not set).
  kubernetes {
    config_path    = pathexpand("~/.kube/config")
    config_context = "dev"
  }
}
