//go:build tools

// Package tools pins faas-cli 0.13.14 so `make faas-cli` builds it from the module
// proxy: the proxy serves this exact version but not version lists, so
// `go install ...@version` is refused.
package tools

import _ "github.com/openfaas/faas-cli"
