resource "unikube_named_state" "seed" {
  project     = "shop"
  name        = "seed"
  description = "Anonymised shop data for dev and CI environments"

  # Each apply after a source changed makes a new version; unchanged
  # sources plan no change.
  tag      = "@random"
  revision = "2.3.0"
  message  = "Nightly export"

  component {
    name = "db"
    kind = "postgres"
    source {
      path = "${path.module}/seed/shop.dump" # pg_dump -Fc
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
    subject = "token:ci"
    role    = "maintainer"
  }

  timeouts {
    create = "30m"
    update = "30m"
  }
}
