# A named state is imported by its project and name.
terraform import unikube_named_state.seed shop/seed
