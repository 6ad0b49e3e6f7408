# The deploy pipeline's token: it acts as user ci-bot and may publish new
# versions of the project's states through a grant to the token itself.
resource "unikube_token" "deploy" {
  name = "payments-deploy"
  user = "ci-bot"
  ttl  = "2160h" # 90 days; replace it by changing the name or tainting it
}

resource "unikube_project_access" "deploy" {
  project = unikube_project.payments.name
  subject = unikube_token.deploy.subject # token:ci-bot:payments-deploy
  role    = "maintainer"
}

# Hand the secret to the CI system, e.g. as a masked variable.
output "deploy_token" {
  value     = unikube_token.deploy.token
  sensitive = true
}
