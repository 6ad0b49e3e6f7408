# The project of the payments team. The subject applying this becomes its
# owner; deleting it would delete every state in it, so it stays protected.
resource "unikube_project" "payments" {
  name        = "payments"
  description = "Payment service: ledger and invoice data"
}
