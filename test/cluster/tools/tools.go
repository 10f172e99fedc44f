//go:build tools

// Package tools names the Kubernetes commands build.sh builds, so that
// go.mod and go.sum pin them and all their dependencies. kubectl is built
// only on a machine that has none (Debian does not package it).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
