# Every project the provider's token has a grant in.
data "unikube_projects" "all" {}

output "project_names" {
  value = data.unikube_projects.all.projects[*].name
}
