//go:build tools

// Package tools pins the Helm CLI that CI uses to lint and render
// deploy/chart; `make helm` builds it from the Go module proxy.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
