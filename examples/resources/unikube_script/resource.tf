variable "smtp_password" {
  type      = string
  sensitive = true
}

resource "unikube_script" "anonymize" {
  project     = "shop"
  name        = "anonymize-customers"
  description = "Replace customer e-mail addresses after a production state is applied"
  image       = "postgres:16"
  interpreter = "bash"
  body        = <<-EOT
    set -euo pipefail
    psql "$DATABASE_URL" -c "UPDATE customers SET email = 'user' || id || '@example.com'"
  EOT

  variables = [
    {
      name     = "DATABASE_URL"
      required = true
    },
    {
      name    = "BATCH_SIZE"
      default = "1000"
    },
    {
      # A sensitive default is write-only: sent to the platform, never stored
      # in the state. Bump default_wo_version to send a new value.
      name               = "SMTP_PASSWORD"
      sensitive          = true
      default_wo         = var.smtp_password
      default_wo_version = 1
    },
  ]

  service_account = "seeder"
  credentials = [
    {
      secret = "shop-db"
      keys   = ["PGUSER", "PGPASSWORD"]
    },
  ]
}
