# An apply is imported by the reference it applies.
terraform import unikube_state_apply.dev shop/seed:@latest
