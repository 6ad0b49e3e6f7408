# Who has access to the whole payments project, and which states it holds.
data "unikube_project" "payments" {
  name = "payments"
}

output "payments_access" {
  value = { for g in data.unikube_project.payments.access : g.subject => g.role }
}

output "payments_states" {
  value = data.unikube_project.payments.states
}
