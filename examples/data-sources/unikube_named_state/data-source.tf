data "unikube_named_state" "seed" {
  project = "shop"
  name    = "seed"
}

output "seed_tags" {
  value = [for v in data.unikube_named_state.seed.versions : v.tag]
}
