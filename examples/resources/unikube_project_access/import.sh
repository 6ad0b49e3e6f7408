# A project grant is imported by its project and subject.
terraform import unikube_project_access.devs payments/group:payments-devs
