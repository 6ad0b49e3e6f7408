# A token for this run only (Terraform 1.10 or later): revoked when the run
# ends, expiring after 15 minutes in any case, never written to the state.
ephemeral "unikube_token" "seed_job" {
  user   = "ci-bot"
  groups = ["payments-devs"]
  ttl    = "15m"
}

# Handed to a write-only argument, e.g. a Kubernetes Secret (Terraform 1.11
# and the kubernetes provider's data_wo), for a Job that runs during the apply.
resource "kubernetes_secret_v1" "seed_job" {
  metadata {
    name      = "unikube-seed-job"
    namespace = "payments"
  }
  data_wo = {
    token = ephemeral.unikube_token.seed_job.token
  }
  data_wo_revision = 1
}
