# A seed made from a dump in the repository and restored into the
# developer's namespace. `ref` is unknown while the plan makes a new version
# (the dump changed), so one `terraform apply` captures the new version and
# restores it; the next plan is empty. (`unikube_named_state.seed.id` names
# the state, not a version: an apply given it would only follow on the next
# apply.)
resource "unikube_named_state" "seed" {
  project = "shop"
  name    = "seed"

  component {
    name = "db"
    kind = "postgres"
    source {
      path = "${path.module}/seed/shop.dump"
    }
  }
}

resource "unikube_state_apply" "dev" {
  state = unikube_named_state.seed.ref

  kubernetes {
    namespace = "dev-alice"
    release   = "shop"
  }
}
