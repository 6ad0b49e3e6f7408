# An in-cluster apply is imported by its namespace and release: the newest
# apply record Secret of the release fills the resource, so the next plan
# is empty when the configuration applies that version.
terraform import unikube_state_apply.alice dev-alice/shop

# An apply to endpoints is imported by the reference it applies.
terraform import unikube_state_apply.dev shop/seed:@latest
