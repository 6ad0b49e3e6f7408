// Builds etcd for test/cluster, outside the main module.
module github.com/unikubehq/terraform-provider-unikube/test/cluster/build/etcd

go 1.23

require go.etcd.io/etcd/server/v3 v3.5.17
