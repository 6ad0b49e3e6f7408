# Resolve a reference to the exact version it names today.
data "unikube_state_version" "seed" {
  reference = "shop/seed:@latest"
}

output "seed_digest" {
  value = data.unikube_state_version.seed.digest
}

output "seed_components" {
  value = [for c in data.unikube_state_version.seed.components : "${c.name} (${c.kind}, ${c.size} bytes)"]
}
