//go:build tools

// Package tools pins versitygw, the S3-compatible server (Apache-2.0, on a
// POSIX directory, checking Signature V4) that CI's second lane runs the
// file suites against; `make versitygw` builds it from the Go module proxy.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
