# The quickstart's Terraform: project `shop`, the named state `shop/seed` made
# from ../seed, who may use it, and the seed applied into the Helm release.
#
# The platform's address and token come from the environment
# (UNIKUBE_ENDPOINT, UNIKUBE_TOKEN), the cluster from KUBECONFIG:
# `make quickstart` sets all three and runs this configuration from a copy in
# .quickstart/terraform (so Terraform's files stay out of the repository),
# with a CLI configuration that installs the provider from its release zip
# (a GoReleaser snapshot) in a filesystem mirror.

terraform {
  required_version = ">= 1.6"

  required_providers {
    unikube = {
      source = "unikubehq/unikube"
    }
  }
}

provider "unikube" {}

variable "namespace" {
  description = "Namespace the shop release is installed in."
  type        = string
  default     = "shop-quickstart"
}

variable "release" {
  description = "Name of the shop Helm release."
  type        = string
  default     = "shop"
}

variable "platform_url_in_cluster" {
  description = "Platform URL as the agent pods reach it, if not the provider's endpoint (e.g. http://host.docker.internal:8080 on kind)."
  type        = string
  default     = ""
}

variable "agent_image" {
  description = "Image of the agent Jobs, if not the provider's default (make quickstart sets it: the local cluster's registry copy, or on kind, k3d and minikube the image it loaded)."
  type        = string
  default     = ""
}

variable "script_image" {
  description = "Image the order-report cluster script runs in (it needs psql)."
  type        = string
  default     = "postgres:15"
}

variable "seed_dir" {
  description = "Directory holding the seed data (shop.sql, cache.rdb, uploads/)."
  type        = string
  default     = "../seed"
}

locals {
  seed = abspath(startswith(var.seed_dir, "/") ? var.seed_dir : "${path.module}/${var.seed_dir}")
}

# The project `shop`. The quickstart tears everything down again, so it is
# not protected; a real project keeps deletion_protection on.
resource "unikube_project" "shop" {
  name                = "shop"
  description         = "The quickstart shop"
  deletion_protection = false
}

# The group shop-devs maintains the project's states: capture, promote,
# apply, run scripts.
resource "unikube_project_access" "shop_devs" {
  project = unikube_project.shop.name
  subject = "group:shop-devs"
  role    = "maintainer"
}

# The CI system's token: user ci-bot, for 30 days. Its secret is in the
# sensitive output ci_token (terraform output -raw ci_token).
resource "unikube_token" "ci" {
  name = "ci"
  user = "ci-bot"
  ttl  = "720h"
}

resource "unikube_named_state" "seed" {
  project     = unikube_project.shop.name
  name        = "seed"
  description = "Shop seed data: orders, a warm cache and uploaded files"

  # The quickstart tears everything down again.
  deletion_protection = false

  tag      = "v1"
  revision = "1.0.0"
  message  = "Quickstart seed"

  component {
    name = "db"
    kind = "postgres"
    source {
      path = "${local.seed}/shop.sql"
    }
  }

  component {
    name = "cache"
    kind = "redis"
    source {
      path = "${local.seed}/cache.rdb"
    }
  }

  component {
    name = "uploads"
    kind = "volume"
    source {
      path = "${local.seed}/uploads"
    }
  }

  # Who may use this state, on top of the project's grants: QA may apply
  # it, the CI token may publish new versions.
  access {
    subject = "group:qa"
    role    = "applier"
  }

  access {
    subject = unikube_token.ci.subject # token:ci-bot:ci
    role    = "maintainer"
  }
}

# The seed, restored into the running release: every component by an agent
# Job next to its data, the app scaled down meanwhile.
resource "unikube_state_apply" "shop" {
  # ref is unknown while the plan makes a new version of the seed, so a
  # changed seed file is captured and restored in the same apply.
  state = unikube_named_state.seed.ref

  kubernetes {
    namespace    = var.namespace
    release      = var.release
    quiesce      = true
    platform_url = var.platform_url_in_cluster != "" ? var.platform_url_in_cluster : null
    agent_image  = var.agent_image != "" ? var.agent_image : null

    # The release runs three workloads; each component names its own.
    mapping {
      component = "db"
      kind      = "StatefulSet"
      name      = "${var.release}-db"
      quiesce   = ["Deployment/${var.release}-web"]
    }

    mapping {
      component = "cache"
      kind      = "Deployment"
      name      = "${var.release}-cache"
    }

    mapping {
      component = "uploads"
      kind      = "Deployment"
      name      = "${var.release}-web"
      pvc       = "${var.release}-uploads"
    }
  }

  timeouts {
    create = "15m"
    update = "15m"
  }
}

# A cluster script the tour runs with `helm state script run shop/order-report shop`:
# it runs as a Job in the release's namespace, with the database password
# from the release's own Secret (as $PASSWORD).
resource "unikube_script" "order_report" {
  project     = unikube_project.shop.name
  name        = "order-report"
  description = "Orders per status in the shop database"
  image       = var.script_image
  interpreter = "sh"
  body        = <<-EOT
    set -eu
    export PGPASSWORD="$PASSWORD"
    psql -X -h "$DB_HOST" -U postgres -d shop \
      -c "SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY orders DESC"
  EOT

  variables = [
    {
      name    = "DB_HOST"
      default = "${var.release}-db"
    },
  ]

  credentials = [
    {
      secret = "${var.release}-db"
      keys   = ["password"]
    },
  ]
}

output "state" {
  description = "The version applied."
  value       = "${unikube_named_state.seed.id}:${unikube_named_state.seed.version_tag} (${unikube_named_state.seed.version_digest})"
}

output "ci_token" {
  description = "Secret of the CI token (shown with terraform output -raw ci_token)."
  value       = unikube_token.ci.token
  sensitive   = true
}

output "results" {
  description = "What the apply did to each component."
  value       = [for r in unikube_state_apply.shop.results : "${r.component}: ${r.action} in ${r.duration}"]
}
