# A script is imported by its project and name.
terraform import unikube_script.anonymize shop/anonymize-customers
