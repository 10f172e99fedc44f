// Package v1alpha1 is the aim.dev/v1alpha1 API: the Solution custom
// resource, a solution as aim.yaml describes it, served on Kubernetes by
// aim's operator.
//
// +kubebuilder:object:generate=true
// +groupName=aim.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "aim.dev", Version: "v1alpha1"}

// AddToScheme registers the package's types with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Solution{}, &SolutionList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
