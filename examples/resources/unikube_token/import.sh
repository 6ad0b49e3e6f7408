# A token is imported by its user and name. Its secret cannot be read back:
# the imported token's `token` attribute stays empty.
terraform import unikube_token.deploy ci-bot/payments-deploy
