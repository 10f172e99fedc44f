//go:build tools

// Package tools names the BuildKit commands images/build.sh builds, so that
// go.mod and go.sum pin them and all their dependencies.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
