variable "staging_orders_url" {
  type      = string
  sensitive = true
}

resource "unikube_named_state" "seed" {
  project     = "shop"
  name        = "seed"
  description = "Anonymised shop data for dev and CI environments"

  # Each apply after a source changed makes a new version; unchanged
  # sources plan no change.
  tag      = "@random"
  revision = "2.3.0"
  message  = "Nightly export"

  # Live sources (below: orders) cannot be hashed at plan time; they are
  # dumped at create, when a local source changes, and when this changes.
  capture_trigger = formatdate("YYYY-MM-DD", plantimestamp())

  component {
    name = "db"
    kind = "postgres"
    source {
      path = "${path.module}/seed/shop.dump" # pg_dump -Fc
    }
  }

  component {
    name = "orders"
    kind = "mysql"
    source {
      url = var.staging_orders_url # write-only: never stored in the state
    }
  }

  component {
    name = "uploads"
    kind = "volume"
    source {
      path = "${path.module}/seed/uploads"
    }
  }

  access {
    subject = "group:shop-devs"
    role    = "applier"
  }

  access {
    subject = "token:ci-bot:ci" # the token "ci" of user ci-bot
    role    = "maintainer"
  }

  timeouts {
    create = "30m"
    update = "30m"
  }
}
