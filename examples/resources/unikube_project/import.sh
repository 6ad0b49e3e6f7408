# A project is imported by its name.
terraform import unikube_project.payments payments
