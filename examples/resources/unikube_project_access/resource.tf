# The developers may apply every state of the project, its leads maintain
# them (capture, promote), and the platform team owns it.
resource "unikube_project_access" "devs" {
  project = unikube_project.payments.name
  subject = "group:payments-devs"
  role    = "applier"
}

resource "unikube_project_access" "leads" {
  project = unikube_project.payments.name
  subject = "group:payments-leads"
  role    = "maintainer"
}

resource "unikube_project_access" "platform" {
  project = unikube_project.payments.name
  subject = "group:platform"
  role    = "owner"
}
