variable "dev_database_url" {
  type      = string
  sensitive = true
}

# Seed a developer's local services with the newest version of shop/seed.
# `terraform plan` resolves the reference and shows in restore_plan what
# each component will do; a new version of the state shows as a change.
resource "unikube_state_apply" "dev" {
  state = "shop/seed:@latest"

  endpoint {
    component = "db"
    url       = var.dev_database_url # postgres://app:...@127.0.0.1:5432/shop; write-only
    # Drop the copy of the replaced database (shop_unikube_prev) once the
    # apply succeeded; the default keeps it until the next apply.
    options = { keep_previous = "0" }
  }

  endpoint {
    component = "uploads"
    url       = "file:///srv/shop/uploads"
  }

  timeouts {
    create = "30m"
    update = "30m"
  }
}

output "restore_plan" {
  value = [for c in unikube_state_apply.dev.restore_plan : "${c.component}: ${c.action} (${c.bytes} bytes)"]
}
