# Seed the database of the Helm release "shop" in namespace dev-alice with
# the newest candidate of shop/seed. The in-cluster executor finds the
# release's PostgreSQL StatefulSet (label app.kubernetes.io/instance=shop),
# stops the web Deployment while the data is replaced, runs one agent Job
# next to the database and records the apply in a Secret of the namespace;
# the next plan reads that record, so a wiped or re-seeded namespace shows
# as a change.
resource "unikube_state_apply" "alice" {
  state      = "shop/seed:@candidate"
  on_destroy = "rollback" # destroy re-applies what the namespace held before

  kubernetes {
    namespace = "dev-alice"
    release   = "shop"
    quiesce   = true

    # The release has a PostgreSQL and a Redis workload: say which is which.
    mapping {
      component = "db"
      kind      = "StatefulSet"
      name      = "shop-postgresql"
      quiesce   = ["Deployment/shop-web"]
    }

    mapping {
      component = "cache"
      selector  = "app.kubernetes.io/instance=shop,app.kubernetes.io/name=redis"
    }

    hooks {
      post {
        selector  = "app.kubernetes.io/instance=shop,app.kubernetes.io/name=web"
        container = "web"
        command   = ["sh", "-c", "wget -qO- http://127.0.0.1:8080/cache/flush"]
        timeout   = "30s"
        on_error  = "continue"
      }
    }

    # The state was captured in staging: point cloned configuration at
    # this namespace.
    substitution {
      kinds = ["ConfigMap"]
      old   = "shop-postgresql.staging.svc"
      new   = "shop-postgresql.dev-alice.svc"
    }
  }

  # A cluster script (unikube_script) run as a Job in the namespace once the
  # data is in place; a failure fails the apply with the script's trace.
  post_script {
    script    = "shop/create-users"
    variables = { COUNT = "10" } # write-only
  }

  timeouts {
    create = "30m"
    update = "30m"
    delete = "30m"
  }
}
